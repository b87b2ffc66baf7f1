"""ListAssets says how many assets its filter matches in all (total_size), on every page, so a
client can offer "select all N" before it has loaded them."""

from __future__ import annotations

import pytest

from imgtag_dev.testing import unique_png, upload

pytestmark = pytest.mark.e2e


def test_every_page_carries_the_total_the_filter_matches(anonymous, new_user) -> None:
    person = new_user()
    names = [upload(anonymous, person, unique_png()).json()["name"] for _ in range(5)]
    tagged = anonymous.post(
        "/v1/assets:batchAddTags",
        json={"selection": {"names": {"names": names[:3]}}, "tags": ["few"]},
        headers=person.headers,
    )
    assert tagged.status_code == 200, tagged.text
    anonymous.delete(f"/v1/{names[4]}", headers=person.headers).raise_for_status()

    first = anonymous.get("/v1/assets", params={"page_size": 2}, headers=person.headers).json()
    second = anonymous.get(
        "/v1/assets", params={"page_size": 2, "page_token": first["nextPageToken"]}, headers=person.headers
    ).json()
    assert (first["totalSize"], second["totalSize"]) == (4, 4)  # the trashed one is not listed
    few = anonymous.get("/v1/assets", params={"filter": 'tag = "few"', "page_size": 1}, headers=person.headers)
    assert few.json()["totalSize"] == 3
    trash = anonymous.get(
        "/v1/assets", params={"filter": "state = TRASHED", "show_deleted": True}, headers=person.headers
    )
    assert trash.json()["totalSize"] == 1
