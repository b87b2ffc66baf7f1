"""SQL for assets; keyword-only functions. Every query that returns assets to a caller takes a
`ViewScope`, so no listing can forget whose assets it may show."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, func, insert, or_, select, true, tuple_, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from imgtag_catalog.db.filters import ASSET_FILTER_FIELDS, CAPTURE_ORDER, KEYED_FIELDS
from imgtag_catalog.db.tables import assets
from imgtag_catalog.domain.models import (
    AnalysisState,
    AssetRecord,
    AssetState,
    Camera,
    CaptionState,
    Location,
    ProcessingState,
    Visibility,
)
from imgtag_catalog.domain.visibility import ViewScope
from imgtag_common.filtering import Expr, compile_filter
from imgtag_common.pagination import Cursor

_CAMERA = ("make", "model", "lens_model", "focal_length_mm", "f_number", "exposure_time_s", "iso")
_ENUMS = (AssetState, Visibility, ProcessingState, AnalysisState, CaptionState)
# Sort orders ListAssets offers, and the expression each sorts by (ties broken by id).
SORT_KEYS = {
    "create_time": assets.c.create_time,
    "capture_time": CAPTURE_ORDER,
}
# What a listing reads: everything but the full EXIF (up to 64 KiB of JSON a row), which only
# GetAsset shows.
_LISTED = [column for column in assets.c if column.name != "exif"]


def _record(row: Any) -> AssetRecord:
    data = dict(row._mapping)
    data.pop("sort_key", None)  # a listing's ordering column (list_page_query)
    camera = Camera(**{k: data.pop(f"camera_{k}" if k in ("make", "model") else k) for k in _CAMERA})
    latitude, longitude, altitude = data.pop("latitude"), data.pop("longitude"), data.pop("altitude_m")
    for name, kind in (
        ("state", AssetState),
        ("visibility", Visibility),
        ("processing_state", ProcessingState),
        ("analysis_state", AnalysisState),
        ("caption_state", CaptionState),
    ):
        data[name] = kind(data[name])
    data["labels"], data["exif"] = dict(data["labels"] or {}), dict(data.get("exif") or {})
    location = Location(latitude, longitude, altitude) if latitude is not None and longitude is not None else None
    return AssetRecord(**data, camera=camera, location=location)


def _values(asset: AssetRecord) -> dict[str, Any]:
    values = {
        k: (v.value if isinstance(v, _ENUMS) else v)
        for k, v in asset.__dict__.items()
        if k not in ("camera", "location", "tags", "collection_ids")
    }
    c = asset.camera
    values |= {
        "camera_make": c.make,
        "camera_model": c.model,
        "lens_model": c.lens_model,
        "focal_length_mm": c.focal_length_mm,
        "f_number": c.f_number,
        "exposure_time_s": c.exposure_time_s,
        "iso": c.iso,
        "latitude": asset.location.latitude if asset.location else None,
        "longitude": asset.location.longitude if asset.location else None,
        "altitude_m": asset.location.altitude_m if asset.location else None,
    }
    return values


def in_scope(scope: ViewScope) -> ColumnElement[bool]:
    if scope.owner is None:
        return true()
    if scope.include_shared:
        return or_(assets.c.owner == scope.owner, assets.c.visibility == Visibility.INSTANCE.value)
    return assets.c.owner == scope.owner


def _filtered(query: Select, scope: ViewScope, filters: Sequence[Expr]) -> Select:
    query = query.where(in_scope(scope), assets.c.state != AssetState.UPLOADING.value)
    for expr in filters:
        query = query.where(compile_filter(expr, ASSET_FILTER_FIELDS, KEYED_FIELDS))
    return query


def list_page_query(
    *,
    scope: ViewScope,
    filters: Sequence[Expr],
    sort: str,
    descending: bool,
    cursor: Cursor | None,
    limit: int,
    include_trashed: bool,
) -> Select:
    """The statement behind AssetRepository.list_page (bench/listing.py EXPLAINs it).

    Every part is an ordered index scan that stops after `limit` rows: the cursor is a row
    comparison, so the scan starts at it instead of reading and dropping the rows before it;
    and a user's own assets and those others shared with the instance are two scans (owner
    indexes and partial "shared" indexes) merged in order, because with "owner = me OR
    shared" PostgreSQL can only walk the index of everyone's assets and skip other people's,
    which costs a user with a tenth of the instance ten rows read for each one shown."""
    key = SORT_KEYS[sort]

    def part(visible: ColumnElement[bool]) -> Select:
        query = select(*_LISTED, key.label("sort_key")).where(visible, assets.c.state != AssetState.UPLOADING.value)
        for expr in filters:
            query = query.where(compile_filter(expr, ASSET_FILTER_FIELDS, KEYED_FIELDS))
        if not include_trashed:
            query = query.where(assets.c.state == AssetState.ACTIVE.value)
        if cursor is not None:
            after, bound = tuple_(key, assets.c.id), tuple_(cursor.create_time, cursor.id)
            query = query.where(after < bound if descending else after > bound)
        return query.order_by(*((key.desc(), assets.c.id.desc()) if descending else (key, assets.c.id))).limit(limit)

    if scope.owner is None or not scope.include_shared:
        return part(in_scope(scope))
    mine = assets.c.owner == scope.owner
    shared = and_(assets.c.visibility == Visibility.INSTANCE.value, assets.c.owner != scope.owner)
    page = union_all(part(mine), part(shared)).subquery("page")
    order = (page.c.sort_key.desc(), page.c.id.desc()) if descending else (page.c.sort_key, page.c.id)
    return select(*(page.c[column.name] for column in _LISTED), page.c.sort_key).order_by(*order).limit(limit)


class AssetRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def claim(self, *, asset: AssetRecord) -> AssetRecord | None:
        """Record a new asset (normally UPLOADING). If the owner already has these bytes (and
        the asset is not an explicit duplicate), nothing is inserted and that asset comes back:
        the unique index decides, so simultaneous identical uploads cannot both get in."""
        while True:
            try:
                async with self._sessions.begin() as session:
                    await session.execute(insert(assets).values(**_values(asset)))
            except IntegrityError as error:
                if "assets_one_per_owner_sha256" not in str(error.orig):
                    raise
                existing = await self.find_by_sha256(owner=asset.owner, sha256=asset.sha256)
                if existing is not None:
                    return existing
                continue  # that claim was released in between: try again
            return None

    async def get(self, *, asset_id: uuid.UUID) -> AssetRecord | None:
        async with self._sessions() as session:
            row = (await session.execute(select(assets).where(assets.c.id == asset_id))).first()
        return _record(row) if row else None

    async def get_many(self, *, asset_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, AssetRecord]:
        if not asset_ids:
            return {}
        async with self._sessions() as session:
            rows = (await session.execute(select(assets).where(assets.c.id.in_(list(asset_ids))))).all()
        return {r.id: _record(r) for r in rows}

    async def find_by_sha256(self, *, owner: str, sha256: str) -> AssetRecord | None:
        """The owner's asset with exactly these bytes (the original, not explicit duplicates)."""
        found = await self.find_by_sha256s(owner=owner, sha256s=[sha256])
        return found.get(sha256)

    async def find_by_sha256s(self, *, owner: str, sha256s: Sequence[str]) -> dict[str, AssetRecord]:
        query = select(assets).where(
            assets.c.owner == owner, assets.c.sha256.in_(list(sha256s)), assets.c.duplicate_of.is_(None)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return {r.sha256: _record(r) for r in rows}

    async def list_page(
        self,
        *,
        scope: ViewScope,
        filters: Sequence[Expr],
        sort: str,
        descending: bool,
        cursor: Cursor | None,
        limit: int,
        include_trashed: bool,
    ) -> list[AssetRecord]:
        """`limit` rows after `cursor` in (sort key, id) order: keyset, stable under inserts.
        The records carry no EXIF (see _LISTED)."""
        query = list_page_query(
            scope=scope,
            filters=filters,
            sort=sort,
            descending=descending,
            cursor=cursor,
            limit=limit,
            include_trashed=include_trashed,
        )
        async with self._sessions() as session:
            return [_record(r) for r in (await session.execute(query)).all()]

    async def count(self, *, scope: ViewScope, filters: Sequence[Expr], include_trashed: bool) -> int:
        query = _filtered(select(func.count()).select_from(assets), scope, filters)
        if not include_trashed:
            query = query.where(assets.c.state == AssetState.ACTIVE.value)
        async with self._sessions() as session:
            return (await session.execute(query)).scalar_one()

    async def ids_matching(
        self, *, scope: ViewScope, filters: Sequence[Expr], limit: int, include_trashed: bool
    ) -> list[uuid.UUID]:
        query = _filtered(select(assets.c.id), scope, filters).order_by(assets.c.id).limit(limit)
        if not include_trashed:
            query = query.where(assets.c.state == AssetState.ACTIVE.value)
        async with self._sessions() as session:
            return list((await session.execute(query)).scalars())

    async def random(self, *, scope: ViewScope, filters: Sequence[Expr], count: int) -> list[AssetRecord]:
        """Up to `count` distinct ACTIVE assets, each matching one equally likely. Only ids are
        shuffled (a top-N sort over what the filter leaves, no full rows); a random point in the
        id space would be cheaper, but it favours the photo after the widest gap between ids,
        which in a small album is the same photo nearly every time."""
        ids = (
            _filtered(select(assets.c.id), scope, filters)
            .where(assets.c.state == AssetState.ACTIVE.value)
            .order_by(func.random())
            .limit(count)
        )
        async with self._sessions() as session:
            chosen = list((await session.execute(ids)).scalars())
            if not chosen:
                return []
            rows = {r.id: r for r in (await session.execute(select(assets).where(assets.c.id.in_(chosen)))).all()}
        return [_record(rows[i]) for i in chosen if i in rows]

    async def state_counts(self, *, scope: ViewScope, filters: Sequence[Expr]) -> dict[str, dict[str, int]]:
        """ACTIVE assets per processing state and per analysis state."""
        counts: dict[str, dict[str, int]] = {"processing": {}, "analysis": {}}
        async with self._sessions() as session:
            for kind, column in (("processing", assets.c.processing_state), ("analysis", assets.c.analysis_state)):
                query = _filtered(select(column, func.count()), scope, filters)
                query = query.where(assets.c.state == AssetState.ACTIVE.value).group_by(column)
                counts[kind] = {state: n for state, n in (await session.execute(query)).all()}
        return counts

    async def update(self, *, asset_id: uuid.UUID, changes: dict[str, Any]) -> AssetRecord | None:
        values = {k: (v.value if isinstance(v, _ENUMS) else v) for k, v in changes.items()}
        async with self._sessions.begin() as session:
            row = (
                await session.execute(update(assets).where(assets.c.id == asset_id).values(**values).returning(assets))
            ).first()
        return _record(row) if row else None

    async def update_many(
        self, *, asset_ids: Sequence[uuid.UUID], changes: dict[str, Any], only_state: AssetState | None = None
    ) -> int:
        """Change several assets at once; with `only_state`, only those in that state."""
        values = {k: (v.value if isinstance(v, _ENUMS) else v) for k, v in changes.items()}
        statement = update(assets).where(assets.c.id.in_(list(asset_ids))).values(**values)
        if only_state is not None:
            statement = statement.where(assets.c.state == only_state.value)
        async with self._sessions.begin() as session:
            return (await session.execute(statement)).rowcount or 0

    async def delete_rows(self, *, asset_ids: Sequence[uuid.UUID]) -> None:
        """Remove rows (tags and memberships go with them). Only for assets whose bytes are gone
        or were never stored."""
        async with self._sessions.begin() as session:
            await session.execute(delete(assets).where(assets.c.id.in_(list(asset_ids))))

    async def ids_waiting(
        self,
        *,
        processing: Sequence[ProcessingState],
        analysis: Sequence[AnalysisState],
        older_than: datetime,
        limit: int,
        caption: Sequence[CaptionState] = (),
    ) -> list[uuid.UUID]:
        """Stored assets uploaded before `older_than` in these processing / analysis / caption states."""
        query = select(assets.c.id).where(
            assets.c.state != AssetState.UPLOADING.value, assets.c.create_time < older_than
        )
        if processing:
            query = query.where(assets.c.processing_state.in_([s.value for s in processing]))
        if analysis:
            query = query.where(assets.c.analysis_state.in_([s.value for s in analysis]))
        if caption:
            query = query.where(assets.c.caption_state.in_([s.value for s in caption]))
        async with self._sessions() as session:
            return list((await session.execute(query.order_by(assets.c.create_time).limit(limit))).scalars())

    async def stale_uploads(self, *, older_than: datetime, limit: int) -> list[AssetRecord]:
        query = (
            select(assets)
            .where(assets.c.state == AssetState.UPLOADING.value, assets.c.create_time < older_than)
            .order_by(assets.c.create_time)
            .limit(limit)
        )
        async with self._sessions() as session:
            return [_record(r) for r in (await session.execute(query)).all()]

    async def due_for_purge(self, *, now: datetime, limit: int) -> list[AssetRecord]:
        query = (
            select(assets)
            .where(assets.c.state == AssetState.TRASHED.value, assets.c.purge_time <= now)
            .order_by(assets.c.purge_time)
            .limit(limit)
        )
        async with self._sessions() as session:
            return [_record(r) for r in (await session.execute(query)).all()]
