"""The shared tag vocabulary: one tag per meaning, named in several languages.

A tag's names (canonical display name, each language's name, aliases) are normalized the same way
(NFKC, case-folded, whitespace collapsed) into `search_names`, so "Cat", a full-width "CAT", "cat " and "猫"
(when the tag has that Chinese name) all find the same tag. Users add to the vocabulary by using
new names; renaming, merging and deleting change everyone's tags, so they are admin operations.
Usage counts are per caller: a user's counts cover only the assets they can see."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from imgtag_catalog.domain.models import TagRecord
from imgtag_catalog.domain.visibility import ViewScope
from imgtag_common.errors import AlreadyExists, InvalidArgument, NotFound
from imgtag_common.resources import parse_resource_id

MAX_TAG_LENGTH = 64
MAX_TAGS_PER_REQUEST = 100
CATEGORIES = ("object", "animal", "person", "scene", "place", "event", "activity", "color", "mood", "style", "text")
CUSTOM = "custom"
_SPACES = re.compile(r"\s+")


def clean_tag_name(name: str) -> str:
    """A display name as stored: NFKC, trimmed, inner whitespace collapsed; INVALID_ARGUMENT for
    names that are empty, too long, control characters, or look like resource names."""
    cleaned = _SPACES.sub(" ", unicodedata.normalize("NFKC", name)).strip()
    if not cleaned:
        raise InvalidArgument("a tag name cannot be empty", reason="INVALID_TAG_NAME")
    if len(cleaned) > MAX_TAG_LENGTH:
        raise InvalidArgument(f"a tag name is at most {MAX_TAG_LENGTH} characters", reason="INVALID_TAG_NAME")
    if any(unicodedata.category(ch)[0] == "C" for ch in cleaned):
        raise InvalidArgument("a tag name cannot contain control characters", reason="INVALID_TAG_NAME")
    if cleaned.lower().startswith("tags/"):
        raise InvalidArgument("a tag name cannot start with 'tags/'", reason="INVALID_TAG_NAME")
    return cleaned


def tag_key(name: str) -> str:
    """What tag names are compared by: NFKC, case-folded, whitespace collapsed."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", name)).strip().casefold()


def search_names(display_name: str, display_names: dict[str, str], aliases: Iterable[str]) -> list[str]:
    return sorted({tag_key(n) for n in (display_name, *display_names.values(), *aliases) if n.strip()})


def clean_category(category: str) -> str:
    value = tag_key(category)
    if value and (len(value) > 32 or not re.fullmatch(r"[a-z][a-z0-9_-]*", value)):
        raise InvalidArgument("a category is lower-case letters, digits, '_' and '-'", reason="INVALID_CATEGORY")
    return value


def clean_display_names(names: dict[str, str]) -> dict[str, str]:
    cleaned = {}
    for language, name in names.items():
        code = language.strip().lower()
        if not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})*", code):
            raise InvalidArgument(f"{language!r} is not a BCP-47 language code", reason="INVALID_LANGUAGE")
        cleaned[code] = clean_tag_name(name)
    return cleaned


@dataclass(frozen=True)
class NewTag:
    display_name: str
    display_names: dict[str, str]
    category: str = CUSTOM
    aliases: tuple[str, ...] = ()
    description: str = ""


class TagStore(Protocol):
    async def get(self, *, tag_id: uuid.UUID) -> TagRecord | None: ...
    async def get_many(self, *, tag_ids: list[uuid.UUID]) -> list[TagRecord]: ...
    async def find_by_names(self, *, keys: list[str]) -> dict[str, TagRecord]: ...
    async def create(self, *, tag: TagRecord, search_names: list[str]) -> TagRecord: ...
    async def update(self, *, tag: TagRecord, search_names: list[str]) -> TagRecord: ...
    async def merge(self, *, target: uuid.UUID, sources: list[uuid.UUID]) -> int: ...
    async def delete(self, *, tag_id: uuid.UUID) -> bool: ...
    async def list_with_counts(
        self, *, scope: ViewScope, category: str, name_contains: str, after: tuple[int, uuid.UUID] | None, limit: int
    ) -> tuple[list[TagRecord], int]: ...
    async def autocomplete(
        self, *, scope: ViewScope, prefix_key: str, category: str, limit: int
    ) -> list[TagRecord]: ...


def parse_tag_name(name: str) -> uuid.UUID:
    return parse_resource_id(name, "tags")


class Vocabulary:
    def __init__(self, store: TagStore) -> None:
        self._store = store

    async def get(self, name: str) -> TagRecord:
        tag = await self._store.get(tag_id=parse_tag_name(name))
        if tag is None:
            raise NotFound(f"{name} does not exist", reason="TAG_NOT_FOUND")
        return tag

    async def resolve(self, references: list[str], *, create: bool, category: str = CUSTOM) -> list[TagRecord]:
        """Tags for references: "tags/{id}" must exist; other values are names in any language
        or aliases, created as new tags when unknown and `create` is set (skipped otherwise)."""
        if len(references) > MAX_TAGS_PER_REQUEST:
            raise InvalidArgument(f"at most {MAX_TAGS_PER_REQUEST} tags at once", reason="TOO_MANY_TAGS")
        by_id = [r for r in references if r.startswith("tags/")]
        names = [clean_tag_name(r) for r in references if not r.startswith("tags/")]
        found = {t.id: t for t in await self._store.get_many(tag_ids=[parse_tag_name(r) for r in by_id])}
        for ref in by_id:
            if parse_tag_name(ref) not in found:
                raise NotFound(f"{ref} does not exist", reason="TAG_NOT_FOUND")
        existing = await self._store.find_by_names(keys=[tag_key(n) for n in names])
        resolved = list(found.values())
        for name in names:
            tag = existing.get(tag_key(name))
            if tag is None and create:
                tag = await self.create(NewTag(display_name=name, display_names={}, category=category))
                existing[tag_key(name)] = tag
            if tag is not None and tag not in resolved:
                resolved.append(tag)
        return resolved

    async def ensure(self, tag: NewTag) -> TagRecord:
        """The tag with this canonical name (e.g. an AI label), made on first use."""
        existing = (await self._store.find_by_names(keys=[tag_key(tag.display_name)])).get(tag_key(tag.display_name))
        return existing or await self.create(tag)

    async def create(self, tag: NewTag) -> TagRecord:
        display_name = clean_tag_name(tag.display_name)
        display_names = clean_display_names(tag.display_names)
        aliases = [clean_tag_name(a) for a in tag.aliases]
        now = datetime.now(UTC)
        record = TagRecord(
            id=uuid.uuid4(),
            name_key=tag_key(display_name),
            display_name=display_name,
            display_names=display_names,
            category=clean_category(tag.category) or CUSTOM,
            aliases=aliases,
            description=tag.description.strip()[:1000],
            create_time=now,
            update_time=now,
        )
        return await self._store.create(tag=record, search_names=search_names(display_name, display_names, aliases))

    async def update(
        self,
        name: str,
        *,
        display_names: dict[str, str] | None,
        category: str | None,
        aliases: list[str] | None,
        description: str | None,
    ) -> TagRecord:
        tag = await self.get(name)
        if display_names is not None:
            tag.display_names = clean_display_names(display_names)
        if category is not None:
            tag.category = clean_category(category) or CUSTOM
        if aliases is not None:
            tag.aliases = [clean_tag_name(a) for a in aliases]
        if description is not None:
            tag.description = description.strip()[:1000]
        tag.update_time = datetime.now(UTC)
        return await self._store.update(tag=tag, search_names=self._names(tag))

    async def rename(self, name: str, display_name: str, *, keep_old_name_as_alias: bool) -> TagRecord:
        tag = await self.get(name)
        new_name = clean_tag_name(display_name)
        other = (await self._store.find_by_names(keys=[tag_key(new_name)])).get(tag_key(new_name))
        if other is not None and other.id != tag.id:
            raise AlreadyExists(
                f"another tag is called {new_name!r}; merge them instead",
                reason="TAG_NAME_TAKEN",
                metadata={"tag": other.name},
            )
        if keep_old_name_as_alias and tag_key(tag.display_name) != tag_key(new_name):
            tag.aliases = [*tag.aliases, tag.display_name]
        tag.display_name, tag.name_key = new_name, tag_key(new_name)
        tag.update_time = datetime.now(UTC)
        return await self._store.update(tag=tag, search_names=self._names(tag))

    async def merge(self, name: str, sources: list[str]) -> tuple[TagRecord, int]:
        target = await self.get(name)
        source_tags = [await self.get(s) for s in dict.fromkeys(sources)]
        if not source_tags or any(s.id == target.id for s in source_tags):
            raise InvalidArgument("merge needs source tags other than the target", reason="INVALID_MERGE")
        # The sources' names keep finding the merged tag.
        for source in source_tags:
            target.aliases = [*target.aliases, source.display_name, *source.aliases]
            target.display_names = {**source.display_names, **target.display_names}
        changed = await self._store.merge(target=target.id, sources=[s.id for s in source_tags])
        target.update_time = datetime.now(UTC)
        return await self._store.update(tag=target, search_names=self._names(target)), changed

    async def delete(self, name: str) -> None:
        if not await self._store.delete(tag_id=parse_tag_name(name)):
            raise NotFound(f"{name} does not exist", reason="TAG_NOT_FOUND")

    @staticmethod
    def _names(tag: TagRecord) -> list[str]:
        return search_names(tag.display_name, tag.display_names, tag.aliases)
