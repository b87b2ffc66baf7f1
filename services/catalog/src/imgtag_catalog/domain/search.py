"""Search: one query string in Chinese or English, similar images, and near-duplicate groups.

Fusion (documented in the contract): up to three ranked candidate lists are combined by
reciprocal rank fusion, score(asset) = sum over lists of 1 / (RRF_K + rank), ranks from 1:
  1. tags: assets carrying a tag the query means. A tag is meant when one of its names or
     aliases, in any language, is the query, one of its words, or (for names of two or more
     characters) appears inside it ("海边日落" finds 海边 and 日落), with weight 1; or when the
     query or one of its words is close in meaning to one of its names in the multilingual text
     space (cosine >= MIN_TAG_SIMILARITY, and within TAG_SPREAD of the closest tag), with that
     similarity as weight: "kitten" and "小猫" find cat/猫, "摩托" finds motorcycle, while "cat"
     does not find dog. Ranked by the sum over matched tags of weight x confidence.
  2. text: the query's multilingual text embedding against each asset's text embedding (its tags
     in both languages, caption, recognized text, title, description); only candidates with a
     cosine similarity of at least MIN_TEXT_SIMILARITY count.
  3. clip: when a CLIP model is present, the query's CLIP text embedding against the assets'
     CLIP image embeddings, above MIN_CLIP_SIMILARITY.
  4. words: assets whose text read in the photo (OCR, when the catalog reads text) contains every
     word of the query of MIN_WORD_LENGTH or more characters, closest first. One embedding of a
     whole page of text says little about each of its words; this list finds the sign, receipt
     or screenshot that says what was typed.
The minimum similarities are what make a nonsense query come back empty. Results are ordered
by fused score alone (then id, for a stable order), and pages are keyset cursors on (score, id)
bound to the query and filter."""

from __future__ import annotations

import asyncio
import re
import unicodedata
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from imgtag_catalog.domain.assets import effective_filters, parse_asset_name
from imgtag_catalog.domain.models import AssetRecord
from imgtag_catalog.domain.visibility import ViewScope, require_visible, view_scope
from imgtag_common.auth import Principal
from imgtag_common.errors import InvalidArgument
from imgtag_common.filtering import Expr
from imgtag_common.pagination import clamp_page_size, query_fingerprint

RRF_K = 60
# Calibrated on the evaluation set (tests/quality): below these, matches are noise.
MIN_TEXT_SIMILARITY = 0.40
# Measured with the multilingual encoder (tests/quality): a query and a tag name meaning the same
# thing score 0.75-0.95 across languages ("kitten"/猫 0.85, "摩托"/摩托车 0.85, "puppy"/狗 0.76),
# related things 0.55-0.72 ("cat"/dog 0.72, "tea"/coffee 0.64), unrelated ones below 0.35.
MIN_TAG_SIMILARITY = 0.70
TAG_SPREAD = 0.10
MAX_QUERY_WORDS = 8
MIN_WORD_LENGTH = 2
TAG_CANDIDATES = 20
MIN_CLIP_SIMILARITY = 0.22
MIN_VISUAL_SIMILARITY = 0.5
MAX_QUERY = 500
MAX_PAGE = 200
_WORD = re.compile(r"[\w'-]+", re.UNICODE)


@dataclass(frozen=True)
class Vector:
    space: str
    model: str
    values: list[float]


@dataclass(frozen=True)
class Spaces:
    """The embedding spaces in use now: the text space, the visual space for similar images, and
    the cross-modal (CLIP) space when there is one. Empty names: none available (inference is
    down or has no such model), and search falls back to what remains (tags)."""

    text: str
    visual: str
    clip: str = ""


class Embedder(Protocol):
    async def spaces(self) -> Spaces: ...
    async def embed_texts(self, texts: list[str], *, space: str = "") -> list[Vector]: ...
    async def embed_image(self, image: bytes) -> list[Vector]: ...


class SearchStore(Protocol):
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
    ) -> list[tuple[uuid.UUID, float]]: ...
    async def vector_of(self, *, asset_id: uuid.UUID, space: str) -> list[float] | None: ...
    async def tags_named_in(self, *, query_key: str, words: Sequence[str]) -> list[uuid.UUID]: ...
    async def assets_with_words(
        self, *, words: Sequence[str], scope: ViewScope, filters: Sequence[Expr], limit: int
    ) -> list[uuid.UUID]: ...
    async def assets_with_tags(
        self, *, tag_weights: dict[uuid.UUID, float], scope: ViewScope, filters: Sequence[Expr], limit: int
    ) -> list[tuple[uuid.UUID, float, list[uuid.UUID]]]: ...
    async def similar_tags(
        self, *, space: str, query: Sequence[float], min_similarity: float, limit: int
    ) -> list[tuple[uuid.UUID, float]]: ...
    async def tag_names_without_vectors(self, *, space: str, limit: int) -> list[tuple[uuid.UUID, str]]: ...
    async def store_tag_vectors(
        self, *, space: str, rows: Sequence[tuple[uuid.UUID, str, Sequence[float]]]
    ) -> None: ...


class AssetLookup(Protocol):
    async def get(self, *, asset_id: uuid.UUID) -> AssetRecord | None: ...


@dataclass
class Hit:
    asset_id: uuid.UUID
    score: float = 0.0
    matched_tags: list[uuid.UUID] = field(default_factory=list)
    matched_by: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SearchPage:
    hits: list[Hit]
    next_page_token: str


def query_key(query: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", query).casefold().split())


def _fuse(lists: dict[str, list[uuid.UUID]], matched_tags: dict[uuid.UUID, list[uuid.UUID]]) -> list[Hit]:
    hits: dict[uuid.UUID, Hit] = {}
    for signal, ranked in lists.items():
        for rank, asset_id in enumerate(ranked, start=1):
            hit = hits.setdefault(asset_id, Hit(asset_id))
            hit.score += 1.0 / (RRF_K + rank)
            hit.matched_by.append(signal)
    for asset_id, tag_ids in matched_tags.items():
        if asset_id in hits:
            hits[asset_id].matched_tags = tag_ids
    return sorted(hits.values(), key=lambda h: (-h.score, h.asset_id))


def _page(hits: list[Hit], *, page_size: int, page_token: str, fingerprint: str, min_score: float) -> SearchPage:
    hits = [h for h in hits if h.score >= min_score]
    if page_token:
        try:
            token_print, score_text, last_id = page_token.split(":")
            after = (float(score_text), uuid.UUID(last_id))
        except ValueError as error:
            raise InvalidArgument("page_token is not valid", reason="INVALID_PAGE_TOKEN") from error
        if token_print != fingerprint:
            raise InvalidArgument("page_token belongs to another search", reason="PAGE_TOKEN_MISMATCH")
        hits = [h for h in hits if (-h.score, h.asset_id) > (-after[0], after[1])]
    page = hits[:page_size]
    token = f"{fingerprint}:{page[-1].score!r}:{page[-1].asset_id}" if len(hits) > page_size else ""
    return SearchPage(page, token)


class Search:
    def __init__(self, store: SearchStore, assets: AssetLookup, embedder: Embedder, *, candidates: int) -> None:
        """`candidates`: how many each list contributes (the catalog's search_candidates): the most
        a search returns per list, and the depth of the vector lists' index scans (ef_search)."""
        self._store = store
        self._assets = assets
        self._embedder = embedder
        self._candidates = candidates

    async def search(
        self,
        principal: Principal,
        *,
        query: str,
        similar_to: str,
        filter_text: str,
        page_size: int,
        page_token: str,
        min_score: float,
    ) -> SearchPage:
        if len(query) > MAX_QUERY:
            raise InvalidArgument(f"a query is at most {MAX_QUERY} characters", reason="QUERY_TOO_LONG")
        key = query_key(query)
        if not key and not similar_to:
            raise InvalidArgument("give a query or an asset to find similar ones", reason="EMPTY_SEARCH")
        size = clamp_page_size(page_size, default=50, maximum=MAX_PAGE)
        scope, filters = view_scope(principal), effective_filters(principal, filter_text)
        lists: dict[str, list[uuid.UUID]] = {}
        matched: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
        spaces = await self._embedder.spaces()
        if key:
            # The lists are independent once the query's meanings are known: fetched at once.
            words = list(dict.fromkeys(_WORD.findall(key)))
            tag_weights, text_vector = await self._meanings(key, words, spaces.text)
            wanted = {
                "tag": self._store.assets_with_tags(
                    tag_weights=tag_weights, scope=scope, filters=filters, limit=self._candidates
                )
            }
            if text_vector is not None:
                wanted["text"] = self._ids(spaces.text, text_vector, scope, filters, MIN_TEXT_SIMILARITY)
            if spaces.clip:
                wanted["clip"] = self._clip_ids(query, spaces.clip, scope, filters)
            printed = [w for w in words if len(w) >= MIN_WORD_LENGTH][:MAX_QUERY_WORDS]
            if printed:
                wanted["words"] = self._store.assets_with_words(
                    words=printed, scope=scope, filters=filters, limit=self._candidates
                )
            found = dict(zip(wanted, await asyncio.gather(*wanted.values()), strict=True))
            tagged = found.pop("tag")
            lists["tag"] = [asset_id for asset_id, _, _ in tagged]
            matched.update({asset_id: tags for asset_id, _, tags in tagged})
            lists.update(found)
        if similar_to:
            source = require_visible(
                principal, await self._assets.get(asset_id=parse_asset_name(similar_to)), similar_to
            )
            vector = await self._store.vector_of(asset_id=source.id, space=spaces.visual) if spaces.visual else None
            if vector is not None:
                neighbours = await self._store.nearest(
                    space=spaces.visual,
                    query=vector,
                    scope=scope,
                    filters=filters,
                    limit=self._candidates,
                    min_similarity=MIN_VISUAL_SIMILARITY,
                    exclude=source.id,
                )
                lists["visual"] = [asset_id for asset_id, _ in neighbours]
        fingerprint = query_fingerprint(key, similar_to, filter_text)
        return _page(
            _fuse(lists, matched), page_size=size, page_token=page_token, fingerprint=fingerprint, min_score=min_score
        )

    async def _meanings(
        self, key: str, query_words: list[str], space: str
    ) -> tuple[dict[uuid.UUID, float], list[float] | None]:
        """The tags the query means, with weights (see the module docstring), and the query's
        text embedding (None without a text space)."""
        words = [w for w in query_words if w != key][:MAX_QUERY_WORDS]
        named = self._store.tags_named_in(query_key=key, words=words)
        if not space:
            return {tag: 1.0 for tag in await named}, None
        named_tags, vectors = await asyncio.gather(named, self._embedder.embed_texts([key, *words], space=space))
        weights = {tag: 1.0 for tag in named_tags}
        nearby = await asyncio.gather(
            *(
                self._store.similar_tags(
                    space=space, query=vector.values, min_similarity=MIN_TAG_SIMILARITY, limit=TAG_CANDIDATES
                )
                for vector in vectors
            )
        )
        for similar in nearby:
            for tag, similarity in similar:
                if similarity >= similar[0][1] - TAG_SPREAD:
                    weights[tag] = max(weights.get(tag, 0.0), similarity)
        return weights, vectors[0].values

    async def index_tag_names(self, *, limit: int = 1024) -> int:
        """Embed tag names that have no vector in the current text space yet (new tags, renamed
        tags, a new text model). Run by maintenance; returns how many names it embedded."""
        spaces = await self._embedder.spaces()
        if not spaces.text:
            return 0
        pending = await self._store.tag_names_without_vectors(space=spaces.text, limit=limit)
        for start in range(0, len(pending), 128):
            chunk = pending[start : start + 128]
            vectors = await self._embedder.embed_texts([name for _, name in chunk], space=spaces.text)
            await self._store.store_tag_vectors(
                space=spaces.text, rows=[(tag, name, v.values) for (tag, name), v in zip(chunk, vectors, strict=True)]
            )
        return len(pending)

    async def by_image(self, principal: Principal, image: bytes, *, filter_text: str, page_size: int) -> SearchPage:
        spaces = await self._embedder.spaces()
        vectors = {v.space: v for v in await self._embedder.embed_image(image)}
        vector = vectors.get(spaces.visual)
        if vector is None:
            return SearchPage([], "")
        neighbours = await self._store.nearest(
            space=spaces.visual,
            query=vector.values,
            scope=view_scope(principal),
            filters=effective_filters(principal, filter_text),
            limit=clamp_page_size(page_size, default=50, maximum=MAX_PAGE),
            min_similarity=MIN_VISUAL_SIMILARITY,
        )
        return SearchPage([Hit(a, score=s, matched_by=["visual"]) for a, s in neighbours], "")

    async def _clip_ids(self, query: str, space: str, scope: ViewScope, filters: list[Expr]) -> list[uuid.UUID]:
        (clip_vector,) = await self._embedder.embed_texts([query], space=space)
        return await self._ids(space, clip_vector.values, scope, filters, MIN_CLIP_SIMILARITY)

    async def _ids(
        self, space: str, values: list[float], scope: ViewScope, filters: list[Expr], minimum: float
    ) -> list[uuid.UUID]:
        found = await self._store.nearest(
            space=space, query=values, scope=scope, filters=filters, limit=self._candidates, min_similarity=minimum
        )
        return [asset_id for asset_id, _ in found]
