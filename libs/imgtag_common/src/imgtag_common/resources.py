"""Resource names ("assets/<uuid>") and protobuf timestamps, the same way in every service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from google.protobuf import timestamp_pb2

from imgtag_common.errors import InvalidArgument

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
    # What Timestamp.FromDatetime computes (naive times are UTC), without its time tuple and
    # calendar.timegm: a page of 100 assets converts about a thousand of these.
    delta = (value if value.tzinfo is not None else value.replace(tzinfo=UTC)) - _EPOCH
    return timestamp_pb2.Timestamp(seconds=delta.days * 86400 + delta.seconds, nanos=delta.microseconds * 1000)
