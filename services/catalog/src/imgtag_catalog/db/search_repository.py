"""SQL for embeddings, vector search with filters inside the index scan, tag matches, and
near-duplicate links.

HNSW parameters (pgvector 0.8), per embedding space: m = 16, ef_construction = 64 (pgvector's
defaults: a good recall/size balance for up to millions of rows); at query time ef_search = 100
and `hnsw.iterative_scan = relaxed_order`, so a filter that rejects most neighbours makes the
scan continue until the page is full instead of returning a short page. Distances are re-sorted
exactly in Python, because relaxed order may return neighbours slightly out of order."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import Float, and_, cast, column, delete, func, or_, select, text, update
from sqlalchemy import values as values_clause
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from imgtag_catalog.db.filters import ASSET_FILTER_FIELDS, KEYED_FIELDS
from imgtag_catalog.db.repository import in_scope
from imgtag_catalog.db.tables import asset_tags, asset_vectors, assets, duplicate_links, tag_vectors, tags
from imgtag_catalog.domain.models import AssetState, TagState
from imgtag_catalog.domain.visibility import ViewScope
from imgtag_common.errors import InvalidArgument
from imgtag_common.filtering import Expr, compile_filter

HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
HNSW_EF_SEARCH = 100
_SPACE = re.compile(r"[A-Za-z0-9._:/+-]{1,120}")
_LIKE_SPECIAL = re.compile(r"[\\%_]")


def index_name(space: str) -> str:
    return "asset_vectors_hnsw_" + hashlib.sha256(space.encode()).hexdigest()[:16]


def _checked_space(space: str) -> str:
    # Spaces go into DDL (a partial index's WHERE clause): only plain names.
    if not _SPACE.fullmatch(space):
        raise InvalidArgument(f"embedding space {space!r} has characters not allowed", reason="INVALID_SPACE")
    return space


def _searchable(scope: ViewScope, filters: Sequence[Expr]) -> Any:
    conditions = [in_scope(scope), assets.c.state == AssetState.ACTIVE.value]
    conditions += [compile_filter(f, ASSET_FILTER_FIELDS, KEYED_FIELDS) for f in filters]
    return and_(*conditions)


class SearchRepository:
    def __init__(self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._engine = engine
        self._sessions = sessions
        self._indexed: set[str] = set()

    # ------------------------------------------------------------------ vectors

    async def ensure_index(self, *, space: str, dimension: int) -> None:
        """The partial HNSW index of a space, made once (concurrently: writes go on meanwhile)."""
        if space in self._indexed:
            return
        _checked_space(space)
        statement = (
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {index_name(space)} ON asset_vectors USING hnsw "
            f"((embedding::vector({int(dimension)})) vector_cosine_ops) "
            f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}) WHERE space = '{space}'"
        )
        async with self._engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text(statement))
        self._indexed.add(space)

    async def put_vectors(
        self, *, asset_id: uuid.UUID, vectors: Sequence[tuple[str, str, str, Sequence[float]]]
    ) -> None:
        """Store (space, kind, model, values) for an asset, replacing its vector of each space."""
        now = datetime.now(UTC)
        for space, _, _, values in vectors:
            await self.ensure_index(space=space, dimension=len(values))
        async with self._sessions.begin() as session:
            for space, kind, model, values in vectors:
                statement = pg_insert(asset_vectors).values(
                    asset_id=asset_id,
                    space=space,
                    kind=kind,
                    model=model,
                    dimension=len(values),
                    embedding=list(values),
                    update_time=now,
                )
                await session.execute(
                    statement.on_conflict_do_update(
                        index_elements=[asset_vectors.c.asset_id, asset_vectors.c.space],
                        set_={
                            "model": statement.excluded.model,
                            "kind": statement.excluded.kind,
                            "dimension": statement.excluded.dimension,
                            "embedding": statement.excluded.embedding,
                            "update_time": now,
                        },
                    )
                )

    async def vector_of(self, *, asset_id: uuid.UUID, space: str) -> list[float] | None:
        async with self._sessions() as session:
            found = (
                await session.execute(
                    select(asset_vectors.c.embedding).where(
                        asset_vectors.c.asset_id == asset_id, asset_vectors.c.space == space
                    )
                )
            ).scalar_one_or_none()
        return list(found) if found is not None else None

    async def nearest(
        self,
        *,
        space: str,
        query: Sequence[float],
        scope: ViewScope,
        filters: Sequence[Expr],
        limit: int,
        min_similarity: float,
        exclude: uuid.UUID | None = None,
    ) -> list[tuple[uuid.UUID, float]]:
        """Up to `limit` (asset, cosine similarity) of the assets in scope matching the filters,
        most similar first, above `min_similarity`: one index scan with the filters inside it."""
        # The same expression as the space's partial index, so the planner walks that index.
        distance = cast(asset_vectors.c.embedding, Vector(len(query))).cosine_distance(list(query)).label("distance")
        statement = (
            select(asset_vectors.c.asset_id, distance)
            .select_from(asset_vectors.join(assets, assets.c.id == asset_vectors.c.asset_id))
            .where(asset_vectors.c.space == _checked_space(space), _searchable(scope, filters))
            .order_by(distance)
            .limit(limit)
        )
        if exclude is not None:
            statement = statement.where(asset_vectors.c.asset_id != exclude)
        async with self._sessions.begin() as session:
            await session.execute(text(f"SET LOCAL hnsw.ef_search = {max(HNSW_EF_SEARCH, limit)}"))
            await session.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
            rows = (await session.execute(statement)).all()
        found = [(r.asset_id, 1.0 - float(r.distance)) for r in rows]
        return sorted([f for f in found if f[1] >= min_similarity], key=lambda f: (-f[1], f[0]))

    async def spaces_in_use(self) -> dict[str, int]:
        async with self._sessions() as session:
            rows = (
                await session.execute(select(asset_vectors.c.space, func.count()).group_by(asset_vectors.c.space))
            ).all()
        return {space: count for space, count in rows}

    async def drop_space(self, *, space: str) -> None:
        """Forget a space no model produces any more (its vectors can never be compared again)."""
        async with self._sessions.begin() as session:
            await session.execute(delete(asset_vectors).where(asset_vectors.c.space == space))
        async with self._engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text(f"DROP INDEX CONCURRENTLY IF EXISTS {index_name(_checked_space(space))}"))
        self._indexed.discard(space)

    async def missing_vectors(self, *, space: str, limit: int) -> list[uuid.UUID]:
        """Processed, analysed assets without a vector in `space` (after a model change)."""
        has = select(asset_vectors.c.asset_id).where(asset_vectors.c.space == space)
        query = (
            select(assets.c.id)
            .where(
                assets.c.state != AssetState.UPLOADING.value,
                assets.c.analysis_state == "succeeded",
                assets.c.id.notin_(has),
            )
            .limit(limit)
        )
        async with self._sessions() as session:
            return list((await session.execute(query)).scalars())

    # ------------------------------------------------------------------ words

    async def tags_named_in(self, *, query_key: str, words: Sequence[str]) -> list[uuid.UUID]:
        """Tags whose name or alias (any language) is the query, one of its words, or, for
        names of two or more characters, appears inside it (Chinese has no spaces)."""
        name = func.unnest(tags.c.search_names).table_valued("value").render_derived(name="name")
        condition = or_(
            name.c.value == query_key,
            name.c.value.in_(list(words)) if words else False,
            and_(func.char_length(name.c.value) >= 2, text(":query LIKE '%' || name.value || '%'")),
        )
        statement = select(tags.c.id).select_from(tags).join(name, text("true")).where(condition).distinct()
        async with self._sessions() as session:
            return list((await session.execute(statement, {"query": query_key})).scalars())

    async def assets_with_tags(
        self, *, tag_weights: dict[uuid.UUID, float], scope: ViewScope, filters: Sequence[Expr], limit: int
    ) -> list[tuple[uuid.UUID, float, list[uuid.UUID]]]:
        """(asset, score, matched tags) for assets carrying any of the tags, best first: the score
        sums each matched tag's weight times its confidence (1 for people's tags)."""
        if not tag_weights:
            return []
        weights = values_clause(column("tag_id", UUID(as_uuid=True)), column("weight", Float), name="weights").data(
            list(tag_weights.items())
        )
        score = func.sum(weights.c.weight * asset_tags.c.confidence).label("score")
        statement = (
            select(asset_tags.c.asset_id, score, func.array_agg(asset_tags.c.tag_id).label("matched"))
            .join(weights, weights.c.tag_id == asset_tags.c.tag_id)
            .join(assets, assets.c.id == asset_tags.c.asset_id)
            .where(
                asset_tags.c.state.in_([TagState.SUGGESTED.value, TagState.CONFIRMED.value]),
                _searchable(scope, filters),
            )
            .group_by(asset_tags.c.asset_id)
            .order_by(score.desc(), asset_tags.c.asset_id)
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = (await session.execute(statement)).all()
        return [(r.asset_id, float(r.score), list(r.matched)) for r in rows]

    async def assets_with_words(
        self, *, words: Sequence[str], scope: ViewScope, filters: Sequence[Expr], limit: int
    ) -> list[uuid.UUID]:
        """Assets whose recognized text (OCR) contains every word, case-insensitively, the
        closest match first (pg_trgm's word_similarity; the trigram index finds the rows)."""
        if not words:
            return []
        contains = [
            assets.c.recognized_text.ilike("%" + _LIKE_SPECIAL.sub(r"\\\g<0>", word) + "%", escape="\\")
            for word in words
        ]
        closeness = func.word_similarity(" ".join(words), assets.c.recognized_text)
        statement = (
            select(assets.c.id)
            .where(assets.c.recognized_text != "", *contains, _searchable(scope, filters))
            .order_by(closeness.desc(), assets.c.id)
            .limit(limit)
        )
        async with self._sessions() as session:
            return list((await session.execute(statement)).scalars())

    # ------------------------------------------------------------------ tag meanings

    async def similar_tags(
        self, *, space: str, query: Sequence[float], min_similarity: float, limit: int
    ) -> list[tuple[uuid.UUID, float]]:
        """Tags whose name (any of its names) is closest in meaning to the query, as (tag, cosine
        similarity of its best name), most similar first. An exact scan: the table is small."""
        similarity = func.max(1.0 - cast(tag_vectors.c.embedding, Vector(len(query))).cosine_distance(list(query)))
        statement = (
            select(tag_vectors.c.tag_id, similarity.label("similarity"))
            .where(tag_vectors.c.space == space)
            .group_by(tag_vectors.c.tag_id)
            .having(similarity >= min_similarity)
            .order_by(text("similarity DESC"), tag_vectors.c.tag_id)
            .limit(limit)
        )
        async with self._sessions() as session:
            return [(r.tag_id, float(r.similarity)) for r in (await session.execute(statement)).all()]

    async def tag_names_without_vectors(self, *, space: str, limit: int) -> list[tuple[uuid.UUID, str]]:
        """(tag, name) pairs not embedded in `space` yet; first forgets vectors of names a tag no
        longer has (renamed, merged away) and of other spaces (the text model changed)."""
        async with self._sessions.begin() as session:
            await session.execute(delete(tag_vectors).where(tag_vectors.c.space != space))
            await session.execute(
                delete(tag_vectors).where(
                    tag_vectors.c.tag_id == tags.c.id, ~tag_vectors.c.name.op("=")(func.any(tags.c.search_names))
                )
            )
            name = func.unnest(tags.c.search_names).table_valued("value").render_derived(name="name")
            embedded = (
                select(tag_vectors.c.tag_id)
                .where(
                    tag_vectors.c.tag_id == tags.c.id,
                    tag_vectors.c.space == space,
                    tag_vectors.c.name == name.c.value,
                )
                .exists()
            )
            statement = (
                select(tags.c.id, name.c.value).select_from(tags).join(name, text("true")).where(~embedded).limit(limit)
            )
            return [(r.id, r.value) for r in (await session.execute(statement)).all()]

    async def store_tag_vectors(self, *, space: str, rows: Sequence[tuple[uuid.UUID, str, Sequence[float]]]) -> None:
        if not rows:
            return
        stored = [{"tag_id": t, "space": space, "name": n, "embedding": list(v)} for t, n, v in rows]
        async with self._sessions.begin() as session:
            # A tag deleted meanwhile has no row to point at: insert only names of existing tags.
            live = set(
                (await session.execute(select(tags.c.id).where(tags.c.id.in_({t for t, _, _ in rows})))).scalars()
            )
            stored = [v for v in stored if v["tag_id"] in live]
            if stored:
                await session.execute(pg_insert(tag_vectors).values(stored).on_conflict_do_nothing())

    # ------------------------------------------------------------------ near-duplicates

    async def link_duplicates(self, *, owner: str, pairs: Sequence[tuple[uuid.UUID, uuid.UUID, int, float]]) -> None:
        if not pairs:
            return
        now = datetime.now(UTC)
        rows = [
            {
                "asset_a": min(a, b),
                "asset_b": max(a, b),
                "owner": owner,
                "hash_distance": distance,
                "similarity": similarity,
                "create_time": now,
            }
            for a, b, distance, similarity in pairs
        ]
        async with self._sessions.begin() as session:
            await session.execute(pg_insert(duplicate_links).values(rows).on_conflict_do_nothing())

    async def hashes(self, *, asset_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(assets.c.id, assets.c.perceptual_hash).where(assets.c.id.in_(list(asset_ids)))
                )
            ).all()
        return {r.id: r.perceptual_hash for r in rows}

    async def open_links(self, *, owner: str) -> list[tuple[uuid.UUID, uuid.UUID, int]]:
        """Open links between ACTIVE assets of `owner`."""
        a, b = assets.alias("a"), assets.alias("b")
        statement = (
            select(duplicate_links.c.asset_a, duplicate_links.c.asset_b, duplicate_links.c.hash_distance)
            .join(a, a.c.id == duplicate_links.c.asset_a)
            .join(b, b.c.id == duplicate_links.c.asset_b)
            .where(
                duplicate_links.c.owner == owner,
                duplicate_links.c.state == "open",
                a.c.state == AssetState.ACTIVE.value,
                b.c.state == AssetState.ACTIVE.value,
            )
        )
        async with self._sessions() as session:
            return [(r.asset_a, r.asset_b, r.hash_distance) for r in (await session.execute(statement)).all()]

    async def keep_links(self, *, asset_ids: Sequence[uuid.UUID]) -> None:
        """A person kept these together: their links are no longer offered."""
        ids = list(asset_ids)
        async with self._sessions.begin() as session:
            await session.execute(
                update(duplicate_links)
                .where(duplicate_links.c.asset_a.in_(ids), duplicate_links.c.asset_b.in_(ids))
                .values(state="kept")
            )
