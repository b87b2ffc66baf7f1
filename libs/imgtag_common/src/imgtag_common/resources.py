"""Resource names ("assets/<uuid>") and protobuf timestamps, the same way in every service."""

from __future__ import annotations

import uuid
from datetime import datetime

from google.protobuf import timestamp_pb2

from imgtag_common.errors import InvalidArgument


def parse_resource_id(name: str, collection: str) -> uuid.UUID:
    """The UUID in `<collection>/<uuid>`; anything else is INVALID_ARGUMENT."""
    prefix, _, raw = name.partition("/")
    try:
        if prefix != collection:
            raise ValueError(name)
        return uuid.UUID(raw)
    except ValueError as error:
        singular = collection.removesuffix("s")
        raise InvalidArgument(
            f"{name!r} is not a{'n' if singular[0] in 'aeiou' else ''} {singular} name ({collection}/<uuid>)",
            reason=f"INVALID_{singular.upper()}_NAME",
        ) from error


def to_timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts
