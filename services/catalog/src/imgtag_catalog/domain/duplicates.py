"""Near-duplicates: the same picture resized, recompressed or lightly edited.

When an asset has been analysed, its nearest neighbours among the same owner's assets in the
visual embedding space are checked against two signals: the perceptual hash (64-bit dHash, so a
Hamming distance) and the embedding similarity. A pair is linked when the hashes are nearly equal
(distance <= HASH_ALONE) or when both agree loosely (distance <= HASH_WITH_EMBEDDING and
similarity >= EMBEDDING_WITH_HASH), or when the embeddings alone are almost identical
(>= EMBEDDING_ALONE). Groups are the connected components of open links; resolving a group keeps
the chosen members and trashes the rest, and keeping all marks the links so the group is not
offered again."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from imgtag_catalog.domain.models import AssetRecord
from imgtag_catalog.domain.visibility import ViewScope
from imgtag_common.auth import Principal
from imgtag_common.errors import InvalidArgument, NotFound

HASH_ALONE = 4
HASH_WITH_EMBEDDING = 12
EMBEDDING_WITH_HASH = 0.85
EMBEDDING_ALONE = 0.97
NEIGHBOURS = 8


def hash_distance(a: str, b: str) -> int:
    if len(a) != 16 or len(b) != 16:
        return 64
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def is_near_duplicate(distance: int, similarity: float) -> bool:
    return (
        distance <= HASH_ALONE
        or (distance <= HASH_WITH_EMBEDDING and similarity >= EMBEDDING_WITH_HASH)
        or similarity >= EMBEDDING_ALONE
    )


@dataclass(frozen=True)
class Group:
    id: str
    members: list[uuid.UUID]
    max_hash_distance: int


class DuplicateStore(Protocol):
    async def nearest(self, **kwargs) -> list[tuple[uuid.UUID, float]]: ...
    async def hashes(self, *, asset_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]: ...
    async def link_duplicates(
        self, *, owner: str, pairs: Sequence[tuple[uuid.UUID, uuid.UUID, int, float]]
    ) -> None: ...
    async def open_links(self, *, owner: str) -> list[tuple[uuid.UUID, uuid.UUID, int]]: ...
    async def keep_links(self, *, asset_ids: Sequence[uuid.UUID]) -> None: ...


def group_id(members: Sequence[uuid.UUID]) -> str:
    return hashlib.sha256(",".join(sorted(str(m) for m in members)).encode()).hexdigest()[:20]


def components(links: Sequence[tuple[uuid.UUID, uuid.UUID, int]]) -> list[Group]:
    """Connected components of the links (union-find), largest first."""
    parent: dict[uuid.UUID, uuid.UUID] = {}

    def root(x: uuid.UUID) -> uuid.UUID:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b, _ in links:
        parent[root(a)] = root(b)
    members: dict[uuid.UUID, list[uuid.UUID]] = {}
    for node in list(parent):
        members.setdefault(root(node), []).append(node)
    worst: dict[uuid.UUID, int] = {}
    for a, _, distance in links:
        worst[root(a)] = max(worst.get(root(a), 0), distance)
    groups = [Group(group_id(m), sorted(m), worst.get(r, 0)) for r, m in members.items()]
    return sorted(groups, key=lambda g: (-len(g.members), g.id))


class Duplicates:
    def __init__(self, store: DuplicateStore) -> None:
        self._store = store

    async def find_for(self, asset: AssetRecord, *, space: str, vector: Sequence[float]) -> int:
        """Link an analysed asset to its near-duplicates among its owner's assets."""
        neighbours = await self._store.nearest(
            space=space,
            query=vector,
            scope=ViewScope(owner=asset.owner, include_shared=False),
            filters=[],
            limit=NEIGHBOURS,
            min_similarity=EMBEDDING_WITH_HASH,
            exclude=asset.id,
        )
        hashes = await self._store.hashes(asset_ids=[n for n, _ in neighbours])
        pairs = []
        for other, similarity in neighbours:
            distance = hash_distance(asset.perceptual_hash, hashes.get(other, ""))
            if is_near_duplicate(distance, similarity):
                pairs.append((asset.id, other, distance, similarity))
        await self._store.link_duplicates(owner=asset.owner, pairs=pairs)
        return len(pairs)

    async def groups(self, principal: Principal) -> list[Group]:
        return components(await self._store.open_links(owner=principal.user))

    async def resolve(self, principal: Principal, group: str, keep: Sequence[uuid.UUID]) -> list[uuid.UUID]:
        """The members to trash (the caller trashes them); keeping all closes the group."""
        found = next((g for g in await self.groups(principal) if g.id == group), None)
        if found is None:
            raise NotFound("this duplicate group does not exist (any more)", reason="GROUP_NOT_FOUND")
        kept = set(keep)
        if not kept or not kept <= set(found.members):
            raise InvalidArgument("keep names one or more members of the group", reason="INVALID_KEEP")
        await self._store.keep_links(asset_ids=list(kept))
        return [m for m in found.members if m not in kept]
