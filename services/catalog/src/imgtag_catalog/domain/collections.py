"""Collections: each user's nested albums, and the tags they give their members.

Decision (documented in the contract): nested collections inherit auto tags. An asset in
"Trips/Japan" carries the auto tags of "Japan" and of "Trips", as COLLECTION tags that remember
which collections put them there. Every change that could alter that set (adding or removing
members, changing auto tags, moving or deleting a collection) ends by `reconcile`, which makes
the COLLECTION tags of the affected assets exactly what their collections say now. Tags a person
added, and AI tags a person confirmed, are never removed by it."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from imgtag_catalog.domain.models import AssetRecord, CollectionRecord
from imgtag_catalog.domain.tags import Vocabulary
from imgtag_catalog.domain.visibility import require_changeable
from imgtag_common.auth import Principal
from imgtag_common.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from imgtag_common.resources import parse_resource_id

MAX_NAME = 100
MAX_DESCRIPTION = 2000
MAX_TREE = 10_000
_RECONCILE_CHUNK = 500


class ChildHandling(StrEnum):
    REFUSE = "refuse"
    REPARENT = "reparent"
    CASCADE = "cascade"


class CollectionStore(Protocol):
    async def get(self, *, collection_id: uuid.UUID) -> CollectionRecord | None: ...
    async def get_many(self, *, collection_ids: list[uuid.UUID]) -> list[CollectionRecord]: ...
    async def list_for(
        self, *, owner: str | None, parent_id: uuid.UUID | None, top_level: bool
    ) -> list[CollectionRecord]: ...
    async def insert(self, *, collection: CollectionRecord) -> CollectionRecord: ...
    async def update(self, *, collection_id: uuid.UUID, changes: dict[str, Any]) -> CollectionRecord | None: ...
    async def subtree_ids(self, *, root: uuid.UUID) -> list[uuid.UUID]: ...
    async def members(self, *, collection_ids: list[uuid.UUID]) -> list[uuid.UUID]: ...
    async def add_members(self, *, collection_id: uuid.UUID, asset_ids: list[uuid.UUID]) -> None: ...
    async def remove_members(self, *, collection_id: uuid.UUID, asset_ids: list[uuid.UUID]) -> None: ...
    async def inherited_auto_tags(
        self, *, asset_ids: list[uuid.UUID]
    ) -> dict[tuple[uuid.UUID, uuid.UUID], list[uuid.UUID]]: ...
    async def delete(
        self, *, collection_ids: list[uuid.UUID], reparent_children_to: uuid.UUID | None, root: uuid.UUID
    ) -> None: ...
    async def cover_candidates(self, *, collection_ids: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]: ...


class CollectionTagStore(Protocol):
    async def set_collection_tags(
        self, *, asset_ids: list[uuid.UUID], wanted: dict[tuple[uuid.UUID, uuid.UUID], list[uuid.UUID]]
    ) -> None: ...


def parse_collection_name(name: str) -> uuid.UUID:
    return parse_resource_id(name, "collections")


def clean_collection_name(name: str) -> str:
    cleaned = " ".join(unicodedata.normalize("NFKC", name).split())
    if not cleaned or len(cleaned) > MAX_NAME or any(unicodedata.category(c)[0] == "C" for c in cleaned):
        raise InvalidArgument(
            f"a collection name is 1-{MAX_NAME} printable characters", reason="INVALID_COLLECTION_NAME"
        )
    return cleaned


@dataclass(frozen=True)
class CollectionNode:
    collection: CollectionRecord
    children: list[CollectionNode]


class Collections:
    def __init__(
        self,
        store: CollectionStore,
        tags: CollectionTagStore,
        vocabulary: Vocabulary,
        *,
        on_tags_changed: Callable[[list[uuid.UUID]], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._tags = tags
        self._vocabulary = vocabulary
        # Told which assets' tags a reconcile may have changed (their text embeddings follow).
        self._on_tags_changed = on_tags_changed

    # ------------------------------------------------------------------ reading

    async def get(self, principal: Principal, name: str) -> CollectionRecord:
        collection = await self._store.get(collection_id=parse_collection_name(name))
        # Collections are private to their owner (admins see all): others get NOT_FOUND.
        if collection is None or not (principal.is_admin or collection.owner == principal.user):
            raise NotFound(f"{name} does not exist", reason="COLLECTION_NOT_FOUND")
        return collection

    async def list(self, principal: Principal, *, parent: str | None) -> list[CollectionRecord]:
        owner = None if principal.is_admin else principal.user
        if parent is None:
            return await self._store.list_for(owner=owner, parent_id=None, top_level=False)
        if parent == "":
            return await self._store.list_for(owner=owner, parent_id=None, top_level=True)
        parent_record = await self.get(principal, parent)
        return await self._store.list_for(owner=owner, parent_id=parent_record.id, top_level=False)

    async def tree(self, principal: Principal, *, root: str, max_depth: int) -> list[CollectionNode]:
        owner = None if principal.is_admin else principal.user
        every = await self._store.list_for(owner=owner, parent_id=None, top_level=False)
        if len(every) > MAX_TREE:
            raise ResourceExhausted(f"more than {MAX_TREE} collections; use ListCollections", reason="TREE_TOO_LARGE")
        children: dict[uuid.UUID | None, list[CollectionRecord]] = {}
        for collection in every:
            children.setdefault(collection.parent_id, []).append(collection)

        def build(parent_id: uuid.UUID | None, depth: int) -> list[CollectionNode]:
            if max_depth and depth > max_depth:
                return []
            return [CollectionNode(c, build(c.id, depth + 1)) for c in children.get(parent_id, [])]

        if root:
            top = await self.get(principal, root)
            return [CollectionNode(top, build(top.id, 1))]
        return build(None, 1)

    async def covers(self, collections: list[CollectionRecord]) -> dict[uuid.UUID, uuid.UUID]:
        """Each collection's cover: the one chosen, else its most recently added member."""
        chosen = {c.id: c.cover_asset_id for c in collections if c.cover_asset_id}
        missing = [c.id for c in collections if not c.cover_asset_id]
        return {**await self._store.cover_candidates(collection_ids=missing), **chosen}

    # ------------------------------------------------------------------ changing

    async def create(
        self,
        principal: Principal,
        *,
        display_name: str,
        description: str,
        parent: str,
        auto_tags: list[str],
        cover: AssetRecord | None,
    ) -> CollectionRecord:
        parent_record = await self.get(principal, parent) if parent else None
        tags = await self._vocabulary.resolve(auto_tags, create=True)
        now = datetime.now(UTC)
        collection = CollectionRecord(
            id=uuid.uuid4(),
            owner=parent_record.owner if parent_record else principal.user,
            parent_id=parent_record.id if parent_record else None,
            display_name=clean_collection_name(display_name),
            description=_description(description),
            auto_tag_ids=[t.id for t in tags],
            cover_asset_id=self._cover(principal, cover),
            create_time=now,
            update_time=now,
        )
        return await self._store.insert(collection=collection)

    async def update(
        self,
        principal: Principal,
        name: str,
        *,
        display_name: str | None,
        description: str | None,
        auto_tags: list[str] | None,
        cover: AssetRecord | bool | None,
    ) -> CollectionRecord:
        """`cover`: an asset, None to go back to "most recent member", False to leave it."""
        collection = await self.get(principal, name)
        changes: dict[str, Any] = {"update_time": datetime.now(UTC)}
        if display_name is not None:
            changes["display_name"] = clean_collection_name(display_name)
        if description is not None:
            changes["description"] = _description(description)
        if cover is not False:
            changes["cover_asset_id"] = self._cover(principal, cover or None)
        if auto_tags is not None:
            changes["auto_tag_ids"] = [t.id for t in await self._vocabulary.resolve(auto_tags, create=True)]
        updated = await self._store.update(collection_id=collection.id, changes=changes)
        assert updated is not None
        if auto_tags is not None:
            await self.reconcile(
                await self._store.members(collection_ids=await self._store.subtree_ids(root=collection.id))
            )
        return updated

    async def move(self, principal: Principal, name: str, new_parent: str) -> CollectionRecord:
        collection = await self.get(principal, name)
        target = await self.get(principal, new_parent) if new_parent else None
        subtree = await self._store.subtree_ids(root=collection.id)
        if target is not None and target.id in subtree:
            raise InvalidArgument(
                "a collection cannot move into itself or one of its sub-collections", reason="COLLECTION_CYCLE"
            )
        if target is not None and target.owner != collection.owner:
            raise InvalidArgument("collections move only within one owner's tree", reason="OTHER_OWNER")
        moved = await self._store.update(
            collection_id=collection.id,
            changes={"parent_id": target.id if target else None, "update_time": datetime.now(UTC)},
        )
        assert moved is not None
        await self.reconcile(await self._store.members(collection_ids=subtree))
        return moved

    async def delete(self, principal: Principal, name: str, children: ChildHandling) -> None:
        collection = await self.get(principal, name)
        subtree = await self._store.subtree_ids(root=collection.id)
        has_children = len(subtree) > 1
        if has_children and children is ChildHandling.REFUSE:
            raise FailedPrecondition(
                "this collection has sub-collections: choose to move them up or delete them too",
                reason="COLLECTION_HAS_CHILDREN",
            )
        doomed = subtree if children is ChildHandling.CASCADE else [collection.id]
        affected = await self._store.members(collection_ids=subtree)
        await self._store.delete(collection_ids=doomed, reparent_children_to=collection.parent_id, root=collection.id)
        await self.reconcile(affected)

    async def add_assets(self, principal: Principal, name: str, assets: list[AssetRecord]) -> None:
        collection = await self.get(principal, name)
        for asset in assets:
            require_changeable(principal, asset, asset.name)
        ids = [a.id for a in assets]
        await self._store.add_members(collection_id=collection.id, asset_ids=ids)
        await self.reconcile(ids)

    async def remove_assets(self, principal: Principal, name: str, assets: list[AssetRecord]) -> None:
        collection = await self.get(principal, name)
        ids = [a.id for a in assets]
        await self._store.remove_members(collection_id=collection.id, asset_ids=ids)
        await self.reconcile(ids)

    async def reconcile(self, asset_ids: Iterable[uuid.UUID]) -> None:
        """Make the COLLECTION tags of these assets match their collections now."""
        ids = list(dict.fromkeys(asset_ids))
        for start in range(0, len(ids), _RECONCILE_CHUNK):
            chunk = ids[start : start + _RECONCILE_CHUNK]
            wanted = await self._store.inherited_auto_tags(asset_ids=chunk)
            await self._tags.set_collection_tags(asset_ids=chunk, wanted=wanted)
            if self._on_tags_changed is not None:
                await self._on_tags_changed(chunk)

    @staticmethod
    def _cover(principal: Principal, cover: AssetRecord | None) -> uuid.UUID | None:
        if cover is None:
            return None
        return require_changeable(principal, cover, cover.name).id


def _description(text: str) -> str:
    cleaned = "".join(ch for ch in text if ch.isprintable() or ch in "\n\t").strip()
    if len(cleaned) > MAX_DESCRIPTION:
        raise InvalidArgument(f"a description is at most {MAX_DESCRIPTION} characters", reason="TEXT_TOO_LONG")
    return cleaned
