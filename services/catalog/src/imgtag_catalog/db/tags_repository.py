"""SQL for the tag vocabulary and for tags on assets; keyword-only functions."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, delete, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from imgtag_catalog.db.repository import in_scope
from imgtag_catalog.db.tables import asset_tags, assets, tags
from imgtag_catalog.domain.models import AssetState, AssetTag, TagRecord, TagSource, TagState
from imgtag_catalog.domain.pipeline import VISION_MODEL_PREFIX
from imgtag_catalog.domain.visibility import ViewScope

_VISIBLE_STATES = (TagState.SUGGESTED.value, TagState.CONFIRMED.value)


def _tag(row: Any, usage: int = 0, confirmed: int = 0) -> TagRecord:
    return TagRecord(
        id=row.id,
        name_key=row.name_key,
        display_name=row.display_name,
        display_names=dict(row.display_names or {}),
        category=row.category,
        aliases=list(row.aliases or []),
        description=row.description,
        create_time=row.create_time,
        update_time=row.update_time,
        usage_count=usage,
        confirmed_count=confirmed,
    )


def _counts(scope: ViewScope):
    """(tag id, usage, confirmed) over the ACTIVE assets in `scope`."""
    return (
        select(
            asset_tags.c.tag_id,
            func.count().label("usage"),
            func.count().filter(asset_tags.c.state == TagState.CONFIRMED.value).label("confirmed"),
        )
        .join(assets, assets.c.id == asset_tags.c.asset_id)
        .where(asset_tags.c.state.in_(_VISIBLE_STATES), assets.c.state == AssetState.ACTIVE.value, in_scope(scope))
        .group_by(asset_tags.c.tag_id)
        .subquery()
    )


class TagRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    # ------------------------------------------------------------------ vocabulary

    async def get(self, *, tag_id: uuid.UUID) -> TagRecord | None:
        found = await self.get_many(tag_ids=[tag_id])
        return found[0] if found else None

    async def get_many(self, *, tag_ids: list[uuid.UUID]) -> list[TagRecord]:
        if not tag_ids:
            return []
        async with self._sessions() as session:
            rows = (await session.execute(select(tags).where(tags.c.id.in_(tag_ids)))).all()
        return [_tag(r) for r in rows]

    async def find_by_names(self, *, keys: list[str]) -> dict[str, TagRecord]:
        """For each normalized name, the tag it names (canonical names win over aliases)."""
        if not keys:
            return {}
        query = select(tags).where(tags.c.search_names.overlap(list(set(keys))))
        async with self._sessions() as session:
            rows = [_tag(r) for r in (await session.execute(query)).all()]
        found: dict[str, TagRecord] = {}
        for key in keys:
            exact = [t for t in rows if t.name_key == key]
            others = [t for t in rows if key in _names(t)]
            if exact or others:
                found[key] = (exact or sorted(others, key=lambda t: t.create_time))[0]
        return found

    async def create(self, *, tag: TagRecord, search_names: list[str]) -> TagRecord:
        """Insert, or return the tag that got the same name first (two uploads may race)."""
        values = {
            "id": tag.id,
            "name_key": tag.name_key,
            "display_name": tag.display_name,
            "display_names": tag.display_names,
            "category": tag.category,
            "aliases": tag.aliases,
            "search_names": search_names,
            "description": tag.description,
            "create_time": tag.create_time,
            "update_time": tag.update_time,
        }
        statement = pg_insert(tags).values(**values).on_conflict_do_nothing(index_elements=[tags.c.name_key])
        async with self._sessions.begin() as session:
            await session.execute(statement)
            row = (await session.execute(select(tags).where(tags.c.name_key == tag.name_key))).one()
        return _tag(row)

    async def update(self, *, tag: TagRecord, search_names: list[str]) -> TagRecord:
        async with self._sessions.begin() as session:
            row = (
                await session.execute(
                    update(tags)
                    .where(tags.c.id == tag.id)
                    .values(
                        name_key=tag.name_key,
                        display_name=tag.display_name,
                        display_names=tag.display_names,
                        category=tag.category,
                        aliases=sorted(set(tag.aliases)),
                        search_names=search_names,
                        description=tag.description,
                        update_time=tag.update_time,
                    )
                    .returning(tags)
                )
            ).one()
        return _tag(row)

    async def merge(self, *, target: uuid.UUID, sources: list[uuid.UUID]) -> int:
        """Move every source link to the target (keeping the strongest state), delete sources."""
        strength = case(
            (asset_tags.c.state == TagState.CONFIRMED.value, 3),
            (asset_tags.c.state == TagState.SUGGESTED.value, 2),
            else_=1,
        )
        async with self._sessions.begin() as session:
            moved = (
                await session.execute(
                    select(asset_tags)
                    .where(asset_tags.c.tag_id.in_(sources))
                    .order_by(asset_tags.c.asset_id, strength.desc())
                )
            ).all()
            best: dict[uuid.UUID, Any] = {}
            for row in moved:
                best.setdefault(row.asset_id, row)
            for asset_id, row in best.items():
                statement = pg_insert(asset_tags).values(
                    asset_id=asset_id,
                    tag_id=target,
                    source=row.source,
                    state=row.state,
                    confidence=row.confidence,
                    model=row.model,
                    collection_ids=row.collection_ids,
                    create_time=row.create_time,
                )
                await session.execute(
                    statement.on_conflict_do_update(
                        index_elements=[asset_tags.c.asset_id, asset_tags.c.tag_id],
                        set_={
                            "state": case(
                                (
                                    or_(
                                        statement.excluded.state == TagState.CONFIRMED.value,
                                        asset_tags.c.state == TagState.CONFIRMED.value,
                                    ),
                                    TagState.CONFIRMED.value,
                                ),
                                else_=asset_tags.c.state,
                            ),
                            "confidence": func.greatest(asset_tags.c.confidence, statement.excluded.confidence),
                        },
                    )
                )
            await session.execute(delete(tags).where(tags.c.id.in_(sources)))
        return len(best)

    async def delete(self, *, tag_id: uuid.UUID) -> bool:
        from imgtag_catalog.db.tables import collections

        async with self._sessions.begin() as session:
            await session.execute(
                update(collections)
                .where(collections.c.auto_tag_ids.any(tag_id))
                .values(auto_tag_ids=func.array_remove(collections.c.auto_tag_ids, tag_id))
            )
            deleted = (await session.execute(delete(tags).where(tags.c.id == tag_id).returning(tags.c.id))).first()
        return deleted is not None

    async def list_with_counts(
        self, *, scope: ViewScope, category: str, name_contains: str, after: tuple[int, uuid.UUID] | None, limit: int
    ) -> tuple[list[TagRecord], int]:
        """Tags used in `scope` (all tags for admins), most used first; keyset on (usage, id)."""
        counts = _counts(scope)
        usage = func.coalesce(counts.c.usage, 0)
        query = select(tags, usage.label("usage"), func.coalesce(counts.c.confirmed, 0).label("confirmed")).select_from(
            tags.outerjoin(counts, counts.c.tag_id == tags.c.id)
        )
        if scope.owner is not None:
            query = query.where(counts.c.usage > 0)
        if category:
            query = query.where(tags.c.category == category)
        if name_contains:
            needle = f"%{name_contains}%"
            query = query.where(func.array_to_string(tags.c.search_names, " ").like(needle))
        total_query = select(func.count()).select_from(query.subquery())
        if after is not None:
            query = query.where(or_(usage < after[0], and_(usage == after[0], tags.c.id > after[1])))
        query = query.order_by(usage.desc(), tags.c.id).limit(limit)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
            total = (await session.execute(total_query)).scalar_one()
        return [_tag(r, r.usage, r.confirmed) for r in rows], total

    async def autocomplete(self, *, scope: ViewScope, prefix_key: str, category: str, limit: int) -> list[TagRecord]:
        """Tags with a name or alias starting with (or, second, containing) `prefix_key`, among
        the tags used in `scope` (admins: every tag), most used first."""
        counts = _counts(scope)
        usage = func.coalesce(counts.c.usage, 0)
        names = func.array_to_string(tags.c.search_names, "\x1f")
        escaped = prefix_key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        starts = or_(names.like(f"{escaped}%", escape="\\"), names.like(f"%\x1f{escaped}%", escape="\\"))
        query = (
            select(tags, usage.label("usage"), func.coalesce(counts.c.confirmed, 0).label("confirmed"))
            .select_from(tags.outerjoin(counts, counts.c.tag_id == tags.c.id))
            .where(names.like(f"%{escaped}%", escape="\\"))
            .order_by(case((starts, 0), else_=1), usage.desc(), tags.c.display_name)
            .limit(limit)
        )
        if scope.owner is not None:
            query = query.where(counts.c.usage > 0)
        if category:
            query = query.where(tags.c.category == category)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [_tag(r, r.usage, r.confirmed) for r in rows]

    # ------------------------------------------------------------------ tags on assets

    async def tags_of(
        self, *, asset_ids: list[uuid.UUID], include_rejected: bool = False
    ) -> dict[uuid.UUID, list[AssetTag]]:
        if not asset_ids:
            return {}
        # The links first, then each distinct tag once: a page of 100 assets has hundreds of
        # links to a few dozen tags, and reading every tag's row (JSON names, aliases) per link
        # was most of a listing's database time.
        links = (
            select(asset_tags)
            .join(tags, tags.c.id == asset_tags.c.tag_id)
            .where(asset_tags.c.asset_id.in_(asset_ids))
            .order_by(asset_tags.c.asset_id, asset_tags.c.confidence.desc(), tags.c.display_name)
        )
        if not include_rejected:
            links = links.where(asset_tags.c.state.in_(_VISIBLE_STATES))
        found: dict[uuid.UUID, list[AssetTag]] = defaultdict(list)
        async with self._sessions() as session:
            rows = (await session.execute(links)).all()
            if not rows:
                return found
            wanted = list({row.tag_id for row in rows})
            vocabulary = {t.id: _tag(t) for t in (await session.execute(select(tags).where(tags.c.id.in_(wanted))))}
        for row in rows:
            found[row.asset_id].append(
                AssetTag(
                    tag=vocabulary[row.tag_id],
                    source=TagSource(row.source),
                    state=TagState(row.state),
                    confidence=row.confidence,
                    model=row.model,
                    collection_ids=list(row.collection_ids or []),
                    create_time=row.create_time,
                )
            )
        return found

    async def add_manual(self, *, asset_ids: Iterable[uuid.UUID], tag_ids: Iterable[uuid.UUID]) -> None:
        """A person added these tags: MANUAL and CONFIRMED, whatever they were before."""
        rows = [
            {
                "asset_id": a,
                "tag_id": t,
                "source": TagSource.MANUAL.value,
                "state": TagState.CONFIRMED.value,
                "confidence": 1.0,
                "create_time": datetime.now(UTC),
            }
            for a in asset_ids
            for t in tag_ids
        ]
        if not rows:
            return
        statement = pg_insert(asset_tags).values(rows)
        async with self._sessions.begin() as session:
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=[asset_tags.c.asset_id, asset_tags.c.tag_id],
                    set_={"source": TagSource.MANUAL.value, "state": TagState.CONFIRMED.value, "confidence": 1.0},
                )
            )

    async def remove(self, *, asset_ids: list[uuid.UUID], tag_ids: list[uuid.UUID]) -> None:
        """A person removed these tags: their own (MANUAL, from no collection) are deleted; AI
        and collection tags are kept as REJECTED, so re-analysis and collections leave them off."""
        where = and_(asset_tags.c.asset_id.in_(asset_ids), asset_tags.c.tag_id.in_(tag_ids))
        own = and_(asset_tags.c.source == TagSource.MANUAL.value, func.cardinality(asset_tags.c.collection_ids) == 0)
        async with self._sessions.begin() as session:
            await session.execute(delete(asset_tags).where(where, own))
            await session.execute(update(asset_tags).where(where).values(state=TagState.REJECTED.value))

    async def review(self, *, asset_id: uuid.UUID, tag_id: uuid.UUID, confirm: bool) -> bool:
        """Confirm (-> MANUAL, CONFIRMED) or reject a tag the asset carries; False if it has none."""
        values = (
            {"source": TagSource.MANUAL.value, "state": TagState.CONFIRMED.value}
            if confirm
            else {"state": TagState.REJECTED.value}
        )
        async with self._sessions.begin() as session:
            changed = (
                await session.execute(
                    update(asset_tags)
                    .where(
                        asset_tags.c.asset_id == asset_id,
                        asset_tags.c.tag_id == tag_id,
                        asset_tags.c.state.in_(_VISIBLE_STATES),
                    )
                    .values(**values)
                    .returning(asset_tags.c.tag_id)
                )
            ).first()
        return changed is not None

    async def replace_suggestions(
        self, *, asset_id: uuid.UUID, suggestions: list[tuple[uuid.UUID, float, str]], vision: bool = False
    ) -> None:
        """New AI suggestions (tag, confidence, model) replace the old unreviewed ones of the same
        stage: the analysis' models, or (`vision`) the vision-language providers', so that neither
        stage wipes the other's. A tag already on the asset (confirmed, rejected, added otherwise,
        or suggested by the other stage) is left as it is."""
        now = datetime.now(UTC)
        from_vision = asset_tags.c.model.startswith(VISION_MODEL_PREFIX, autoescape=True)
        async with self._sessions.begin() as session:
            await session.execute(
                delete(asset_tags).where(
                    asset_tags.c.asset_id == asset_id,
                    asset_tags.c.source == TagSource.AI.value,
                    asset_tags.c.state == TagState.SUGGESTED.value,
                    from_vision if vision else ~from_vision,
                )
            )
            if suggestions:
                statement = pg_insert(asset_tags).values(
                    [
                        {
                            "asset_id": asset_id,
                            "tag_id": tag_id,
                            "source": TagSource.AI.value,
                            "state": TagState.SUGGESTED.value,
                            "confidence": confidence,
                            "model": model,
                            "create_time": now,
                        }
                        for tag_id, confidence, model in suggestions
                    ]
                )
                await session.execute(statement.on_conflict_do_nothing())

    async def set_collection_tags(
        self, *, asset_ids: list[uuid.UUID], wanted: dict[tuple[uuid.UUID, uuid.UUID], list[uuid.UUID]]
    ) -> None:
        """Make the COLLECTION tags of `asset_ids` exactly `wanted` ((asset, tag) -> collections):
        new ones are added CONFIRMED; links that no longer apply are dropped, and a tag that was
        there only because of a collection goes with them. Tags people added stay."""
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            current = (
                await session.execute(
                    select(asset_tags).where(
                        asset_tags.c.asset_id.in_(asset_ids), func.cardinality(asset_tags.c.collection_ids) > 0
                    )
                )
            ).all()
            for row in current:
                if (row.asset_id, row.tag_id) in wanted:
                    continue
                stale = and_(asset_tags.c.asset_id == row.asset_id, asset_tags.c.tag_id == row.tag_id)
                if row.source == TagSource.COLLECTION.value:
                    await session.execute(delete(asset_tags).where(stale))
                else:
                    await session.execute(update(asset_tags).where(stale).values(collection_ids=[]))
            for (asset_id, tag_id), collection_ids in wanted.items():
                statement = pg_insert(asset_tags).values(
                    asset_id=asset_id,
                    tag_id=tag_id,
                    source=TagSource.COLLECTION.value,
                    state=TagState.CONFIRMED.value,
                    confidence=1.0,
                    collection_ids=sorted(collection_ids),
                    create_time=now,
                )
                promote = and_(
                    asset_tags.c.source == TagSource.AI.value, asset_tags.c.state == TagState.SUGGESTED.value
                )
                await session.execute(
                    statement.on_conflict_do_update(
                        index_elements=[asset_tags.c.asset_id, asset_tags.c.tag_id],
                        set_={
                            "collection_ids": statement.excluded.collection_ids,
                            "source": case((promote, literal(TagSource.COLLECTION.value)), else_=asset_tags.c.source),
                            "state": case((promote, literal(TagState.CONFIRMED.value)), else_=asset_tags.c.state),
                        },
                    )
                )


def _names(tag: TagRecord) -> set[str]:
    from imgtag_catalog.domain.tags import search_names

    return set(search_names(tag.display_name, tag.display_names, tag.aliases))
