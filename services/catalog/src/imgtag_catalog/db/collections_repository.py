"""SQL for collections, their members, and the auto tags members inherit; keyword-only functions."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from imgtag_catalog.db.tables import assets, collection_assets, collections
from imgtag_catalog.domain.models import AssetState, CollectionRecord
from imgtag_common.errors import AlreadyExists


def _collection(row: Any, counts: dict[uuid.UUID, tuple[int, int, int]] | None = None) -> CollectionRecord:
    direct, total, children = (counts or {}).get(row.id, (0, 0, 0))
    return CollectionRecord(
        id=row.id,
        owner=row.owner,
        parent_id=row.parent_id,
        display_name=row.display_name,
        description=row.description,
        auto_tag_ids=list(row.auto_tag_ids or []),
        cover_asset_id=row.cover_asset_id,
        create_time=row.create_time,
        update_time=row.update_time,
        asset_count=direct,
        total_asset_count=total,
        child_count=children,
    )


def _name_taken(error: IntegrityError) -> AlreadyExists:
    return AlreadyExists("a collection with this name already exists at this level", reason="COLLECTION_NAME_TAKEN")


# Every collection with the ids of all its ancestors (itself included), from the root down.
_SUBTREE_OF = text(
    """
    WITH RECURSIVE sub(id) AS (
        SELECT id FROM collections WHERE id = :root
        UNION ALL
        SELECT c.id FROM collections c JOIN sub ON c.parent_id = sub.id
    ) SELECT id FROM sub
    """
)

# For each asset, each tag its collections (and their ancestors) auto-append, with the
# collections that contribute it.
_INHERITED_AUTO_TAGS = text(
    """
    WITH RECURSIVE chain(asset_id, collection_id, parent_id, auto_tag_ids) AS (
        SELECT ca.asset_id, c.id, c.parent_id, c.auto_tag_ids
        FROM collection_assets ca JOIN collections c ON c.id = ca.collection_id
        WHERE ca.asset_id = ANY(:asset_ids)
        UNION
        SELECT chain.asset_id, p.id, p.parent_id, p.auto_tag_ids
        FROM chain JOIN collections p ON p.id = chain.parent_id
    )
    SELECT asset_id, tag_id, array_agg(DISTINCT collection_id) AS collection_ids
    FROM chain, unnest(auto_tag_ids) AS tag_id
    GROUP BY asset_id, tag_id
    """
)


class CollectionRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get(self, *, collection_id: uuid.UUID) -> CollectionRecord | None:
        found = await self.get_many(collection_ids=[collection_id])
        return found[0] if found else None

    async def get_many(self, *, collection_ids: list[uuid.UUID]) -> list[CollectionRecord]:
        if not collection_ids:
            return []
        async with self._sessions() as session:
            rows = (await session.execute(select(collections).where(collections.c.id.in_(collection_ids)))).all()
            counts = await self._counts(session, [r.id for r in rows])
        return [_collection(r, counts) for r in rows]

    async def list_for(
        self, *, owner: str | None, parent_id: uuid.UUID | None, top_level: bool
    ) -> list[CollectionRecord]:
        """`owner`'s collections (every owner's for None), all or one level, by name."""
        query = select(collections).order_by(func.lower(collections.c.display_name), collections.c.id)
        if owner is not None:
            query = query.where(collections.c.owner == owner)
        if top_level:
            query = query.where(collections.c.parent_id.is_(None))
        elif parent_id is not None:
            query = query.where(collections.c.parent_id == parent_id)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
            counts = await self._counts(session, [r.id for r in rows])
        return [_collection(r, counts) for r in rows]

    async def _counts(self, session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int, int]]:
        """(direct ACTIVE assets, ACTIVE assets in the subtree counted once, children) per id."""
        if not ids:
            return {}
        rows = (
            await session.execute(
                text(
                    """
                    WITH RECURSIVE sub(root, id) AS (
                        SELECT id, id FROM collections WHERE id = ANY(:ids)
                        UNION ALL
                        SELECT sub.root, c.id FROM collections c JOIN sub ON c.parent_id = sub.id
                    )
                    SELECT sub.root,
                        count(DISTINCT ca.asset_id) FILTER (WHERE sub.id = sub.root) AS direct,
                        count(DISTINCT ca.asset_id) AS total,
                        (SELECT count(*) FROM collections k WHERE k.parent_id = sub.root) AS children
                    FROM sub
                    LEFT JOIN collection_assets ca ON ca.collection_id = sub.id
                        AND EXISTS (SELECT 1 FROM assets a WHERE a.id = ca.asset_id AND a.state = :active)
                    GROUP BY sub.root
                    """
                ),
                {"ids": ids, "active": AssetState.ACTIVE.value},
            )
        ).all()
        return {r.root: (r.direct, r.total, r.children) for r in rows}

    async def insert(self, *, collection: CollectionRecord) -> CollectionRecord:
        values = {
            "id": collection.id,
            "owner": collection.owner,
            "parent_id": collection.parent_id,
            "display_name": collection.display_name,
            "description": collection.description,
            "auto_tag_ids": collection.auto_tag_ids,
            "cover_asset_id": collection.cover_asset_id,
            "create_time": collection.create_time,
            "update_time": collection.update_time,
        }
        try:
            async with self._sessions.begin() as session:
                await session.execute(collections.insert().values(**values))
        except IntegrityError as error:
            raise _name_taken(error) from error
        return collection

    async def update(self, *, collection_id: uuid.UUID, changes: dict[str, Any]) -> CollectionRecord | None:
        try:
            async with self._sessions.begin() as session:
                row = (
                    await session.execute(
                        update(collections)
                        .where(collections.c.id == collection_id)
                        .values(**changes)
                        .returning(collections)
                    )
                ).first()
        except IntegrityError as error:
            raise _name_taken(error) from error
        return (await self.get(collection_id=collection_id)) if row else None

    async def subtree_ids(self, *, root: uuid.UUID) -> list[uuid.UUID]:
        async with self._sessions() as session:
            return list((await session.execute(_SUBTREE_OF, {"root": root})).scalars())

    async def members(self, *, collection_ids: list[uuid.UUID]) -> list[uuid.UUID]:
        async with self._sessions() as session:
            return list(
                (
                    await session.execute(
                        select(collection_assets.c.asset_id)
                        .where(collection_assets.c.collection_id.in_(collection_ids))
                        .distinct()
                    )
                ).scalars()
            )

    async def collections_of(self, *, asset_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        found: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
        if not asset_ids:
            return found
        async with self._sessions() as session:
            rows = await session.execute(
                select(collection_assets.c.asset_id, collection_assets.c.collection_id)
                .where(collection_assets.c.asset_id.in_(asset_ids))
                .order_by(collection_assets.c.add_time)
            )
            for asset_id, collection_id in rows:
                found[asset_id].append(collection_id)
        return found

    async def add_members(self, *, collection_id: uuid.UUID, asset_ids: list[uuid.UUID]) -> None:
        if not asset_ids:
            return
        now = datetime.now(UTC)
        statement = pg_insert(collection_assets).values(
            [{"collection_id": collection_id, "asset_id": a, "add_time": now} for a in asset_ids]
        )
        async with self._sessions.begin() as session:
            await session.execute(statement.on_conflict_do_nothing())
            await session.execute(update(collections).where(collections.c.id == collection_id).values(update_time=now))

    async def remove_members(self, *, collection_id: uuid.UUID, asset_ids: list[uuid.UUID]) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                delete(collection_assets).where(
                    collection_assets.c.collection_id == collection_id, collection_assets.c.asset_id.in_(asset_ids)
                )
            )
            await session.execute(
                update(collections).where(collections.c.id == collection_id).values(update_time=datetime.now(UTC))
            )

    async def inherited_auto_tags(
        self, *, asset_ids: list[uuid.UUID]
    ) -> dict[tuple[uuid.UUID, uuid.UUID], list[uuid.UUID]]:
        async with self._sessions() as session:
            rows = (await session.execute(_INHERITED_AUTO_TAGS, {"asset_ids": asset_ids})).all()
        return {(r.asset_id, r.tag_id): list(r.collection_ids) for r in rows}

    async def delete(
        self, *, collection_ids: list[uuid.UUID], reparent_children_to: uuid.UUID | None, root: uuid.UUID
    ) -> None:
        """Delete collections (members' links go with them; assets stay). With a reparent
        target, the root's children move there first."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(collections)
                .where(collections.c.parent_id == root, collections.c.id.notin_(collection_ids))
                .values(parent_id=reparent_children_to)
            )
            # Children first, so the parent reference never dangles mid-statement.
            for collection_id in reversed(collection_ids):
                await session.execute(delete(collections).where(collections.c.id == collection_id))

    async def cover_candidates(self, *, collection_ids: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        """The most recently added ACTIVE member of each collection (the default cover)."""
        if not collection_ids:
            return {}
        latest = (
            select(
                collection_assets.c.collection_id,
                collection_assets.c.asset_id,
                func.row_number()
                .over(partition_by=collection_assets.c.collection_id, order_by=collection_assets.c.add_time.desc())
                .label("rank"),
            )
            .join(
                assets,
                and_(assets.c.id == collection_assets.c.asset_id, assets.c.state == literal(AssetState.ACTIVE.value)),
            )
            .where(collection_assets.c.collection_id.in_(collection_ids))
            .subquery()
        )
        async with self._sessions() as session:
            rows = (
                await session.execute(select(latest.c.collection_id, latest.c.asset_id).where(latest.c.rank == 1))
            ).all()
        return {r.collection_id: r.asset_id for r in rows}
