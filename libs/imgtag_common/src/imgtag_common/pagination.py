"""Opaque keyset page tokens: the (create_time, id) of the last row of the previous page, the
same way for every List RPC."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from imgtag_common.errors import InvalidArgument


@dataclass(frozen=True)
class Cursor:
    create_time: datetime
    id: uuid.UUID


def encode_cursor(cursor: Cursor) -> str:
    raw = json.dumps({"t": cursor.create_time.isoformat(), "id": str(cursor.id)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str) -> Cursor | None:
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        return Cursor(create_time=datetime.fromisoformat(data["t"]), id=uuid.UUID(data["id"]))
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidArgument("page_token is not valid; start again without it", reason="INVALID_PAGE_TOKEN") from error


def clamp_page_size(page_size: int, *, default: int, maximum: int) -> int:
    if page_size < 0:
        raise InvalidArgument("page_size must not be negative", reason="INVALID_PAGE_SIZE")
    return min(page_size or default, maximum)
