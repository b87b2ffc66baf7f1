"""Text search through the gateway finds photos by their tags' names in either language (the
tag-name list of the fused search, which needs no model)."""

from __future__ import annotations

import secrets

import pytest

from imgtag_dev.testing import unique_png, upload

pytestmark = pytest.mark.e2e


def test_text_search_finds_a_photo_by_its_tag_in_chinese_and_in_english(anonymous, new_user) -> None:
    person = new_user()
    word = "kitten" + secrets.token_hex(3)
    chinese = "小猫" + word[-6:]
    tag = anonymous.post(
        "/v1/tags", json={"displayName": word, "displayNames": {"en": word, "zh": chinese}}, headers=person.headers
    ).json()
    asset = upload(anonymous, person, unique_png()).json()
    other = upload(anonymous, person, unique_png()).json()
    tagged = anonymous.post(f"/v1/{asset['name']}:addTags", json={"tags": [tag["name"]]}, headers=person.headers)
    assert tagged.status_code == 200, tagged.text

    for query in (word, chinese, f"a photo of {word}", f"我的{chinese}照片"):
        reply = anonymous.post("/v1/assets:search", json={"query": query, "pageSize": 10}, headers=person.headers)
        assert reply.status_code == 200, reply.text
        found = [r["asset"]["name"] for r in reply.json()["results"]]
        assert found == [asset["name"]], query
        assert other["name"] not in found
