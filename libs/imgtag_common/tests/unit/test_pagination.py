import uuid
from datetime import UTC, datetime

import pytest

from imgtag_common.errors import InvalidArgument
from imgtag_common.pagination import Cursor, clamp_page_size, decode_cursor, encode_cursor
from imgtag_common.resources import parse_resource_id


def test_cursor_round_trips() -> None:
    cursor = Cursor(create_time=datetime(2026, 11, 24, 1, 2, 3, 456789, tzinfo=UTC), id=uuid.uuid4())
    assert decode_cursor(encode_cursor(cursor)) == cursor


def test_empty_token_means_first_page() -> None:
    assert decode_cursor("") is None


@pytest.mark.parametrize(
    "token", ["garbage", "e30", encode_cursor(Cursor(datetime.now(UTC), uuid.uuid4()))[:-3] + "!!!"]
)
def test_bad_tokens_are_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidArgument):
        decode_cursor(token)


def test_page_size_defaults_and_caps() -> None:
    assert clamp_page_size(0, default=50, maximum=500) == 50
    assert clamp_page_size(10_000, default=50, maximum=500) == 500
    with pytest.raises(InvalidArgument):
        clamp_page_size(-1, default=50, maximum=500)


def test_resource_names_are_checked() -> None:
    asset_id = uuid.uuid4()
    assert parse_resource_id(f"assets/{asset_id}", "assets") == asset_id
    for bad in ("assets/", "collections/" + str(asset_id), "assets/not-a-uuid", str(asset_id)):
        with pytest.raises(InvalidArgument):
            parse_resource_id(bad, "assets")


def test_tokens_are_bound_to_their_query() -> None:
    cursor = Cursor(datetime.now(UTC), uuid.uuid4())
    token = encode_cursor(cursor, "filter-a")
    assert decode_cursor(token, "filter-a") == cursor
    with pytest.raises(InvalidArgument) as caught:
        decode_cursor(token, "filter-b")
    assert caught.value.reason == "PAGE_TOKEN_MISMATCH"
