"""Opaque keyset page tokens, the same way for every List RPC: the sort value and id of the last
row of the previous page, bound to the query that produced them (a token only works with the
same filter and order; anything else is INVALID_ARGUMENT, never a silently different page)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from imgtag_common.errors import InvalidArgument


@dataclass(frozen=True)
class Cursor:
    create_time: datetime  # the sort value (a time) of the last row
    id: uuid.UUID


def query_fingerprint(*parts: object) -> str:
    """A short digest of what defines a listing (filter, order, flags)."""
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:12]


def encode_cursor(cursor: Cursor, query: str = "") -> str:
    fields = {"t": cursor.create_time.isoformat(), "id": str(cursor.id)}
    if query:
        fields["q"] = query
    raw = json.dumps(fields, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str, query: str = "") -> Cursor | None:
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        cursor = Cursor(create_time=datetime.fromisoformat(data["t"]), id=uuid.UUID(data["id"]))
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidArgument("page_token is not valid; start again without it", reason="INVALID_PAGE_TOKEN") from error
    if data.get("q", "") != query:
        raise InvalidArgument(
            "page_token belongs to a listing with another filter or order; start again without it",
            reason="PAGE_TOKEN_MISMATCH",
        )
    return cursor


def clamp_page_size(page_size: int, *, default: int, maximum: int) -> int:
    if page_size < 0:
        raise InvalidArgument("page_size must not be negative", reason="INVALID_PAGE_SIZE")
    return min(page_size or default, maximum)
