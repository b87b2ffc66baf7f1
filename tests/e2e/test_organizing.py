"""Organizing a library through the real gateway: tags with provenance and review, the shared
bilingual vocabulary (admins rename, merge, delete; counts per user), nested collections whose
auto tags members inherit, listing with the filter grammar, and batch operations."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from minio import Minio

from imgtag_dev.imagefiles import encode, exif_block, photo
from imgtag_dev.testing import Account, expect_error, unique_png, upload, wait_until_processed

pytestmark = pytest.mark.e2e


def _add(client: httpx.Client, account: Account, **params) -> dict:
    reply = upload(client, account, unique_png(), **params)
    assert reply.status_code == 200, reply.text
    return reply.json()


def _tags(client: httpx.Client, account: Account, name: str) -> set[tuple[str, str]]:
    asset = client.get(f"/v1/{name}", headers=account.headers).json()
    return {(t["displayName"], t["source"]) for t in asset.get("tags", [])}


def _collection(client, account, name: str, parent: str = "", auto_tags=()) -> dict:
    reply = client.post(
        "/v1/collections",
        json={"displayName": name, "parent": parent, "autoTags": list(auto_tags)},
        headers=account.headers,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def _names(*assets: dict) -> dict:
    return {"names": {"names": [a["name"] for a in assets]}}


def _suggest(stack, asset: dict, tag: dict, confidence: float = 0.8) -> None:
    """An AI suggestion as the analysis stage records it (the models arrive with the
    intelligence work; the review rules under test here are the catalog's)."""
    stack.postgres.query(
        "INSERT INTO asset_tags (asset_id, tag_id, source, state, confidence, model, create_time) VALUES"
        f" ('{asset['name'][7:]}', '{tag['name'][5:]}', 'ai', 'suggested', {confidence}, 'models/test', now())",
        "imgtag_catalog",
    )


# ---------------------------------------------------------------------------- tags on assets


def test_tags_are_added_removed_and_reviewed_with_provenance(stack, anonymous, new_user, admin) -> None:
    person = new_user()
    asset = _add(anonymous, person)
    added = anonymous.post(f"/v1/{asset['name']}:addTags", json={"tags": ["Sunset", "日落"]}, headers=person.headers)
    assert {(t["displayName"], t["source"], t["state"]) for t in added.json()["tags"]} == {
        ("Sunset", "MANUAL", "CONFIRMED"),
        ("日落", "MANUAL", "CONFIRMED"),
    }
    # The same name in another case and width is the same tag (NFKC + case folding).
    again = anonymous.post(
        f"/v1/{asset['name']}:addTags",
        json={"tags": ["".join(chr(ord(c) + 0xFEE0) for c in "SUNSET")]},
        headers=person.headers,
    )
    assert len(again.json()["tags"]) == 2
    dog = anonymous.post("/v1/tags", json={"displayName": "dog", "category": "animal"}, headers=person.headers).json()
    cat = anonymous.post("/v1/tags", json={"displayName": "cat-" + uuid.uuid4().hex[:6]}, headers=person.headers).json()
    _suggest(stack, asset, dog)
    _suggest(stack, asset, cat, 0.4)
    shown = anonymous.get(f"/v1/{asset['name']}", headers=person.headers).json()
    assert shown["hasSuggestions"] is True
    assert ("dog", "AI", "SUGGESTED") in {(t["displayName"], t["source"], t["state"]) for t in shown["tags"]}
    confirmed = anonymous.post(f"/v1/{asset['name']}:confirmTag", json={"tag": dog["name"]}, headers=person.headers)
    assert ("dog", "MANUAL", "CONFIRMED") in {
        (t["displayName"], t["source"], t["state"]) for t in confirmed.json()["tags"]
    }
    rejected = anonymous.post(f"/v1/{asset['name']}:rejectTag", json={"tag": cat["name"]}, headers=person.headers)
    assert cat["name"] not in {t["tag"] for t in rejected.json()["tags"]}
    assert not rejected.json().get("hasSuggestions")
    # A rejected suggestion is kept (hidden) so re-analysis does not suggest it again.
    state = stack.postgres.query(
        f"SELECT state FROM asset_tags WHERE asset_id = '{asset['name'][7:]}' AND tag_id = '{cat['name'][5:]}'",
        "imgtag_catalog",
    )
    assert state == "rejected"
    expect_error(
        anonymous.post(f"/v1/{asset['name']}:confirmTag", json={"tag": cat["name"]}, headers=person.headers),
        404,
        5,
        "ASSET_TAG_NOT_FOUND",
    )
    removed = anonymous.post(f"/v1/{asset['name']}:removeTags", json={"tags": ["sunset"]}, headers=person.headers)
    assert "Sunset" not in {t["displayName"] for t in removed.json()["tags"]}


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ("", "INVALID_TAG_NAME"),
        ("x" * 65, "INVALID_TAG_NAME"),
        ("bad\x00tag", "INVALID_TAG_NAME"),
        ("tags/abc", "INVALID_TAG_NAME"),
    ],
)
def test_bad_tag_names_are_refused_and_change_nothing(anonymous, user, tag, reason) -> None:
    asset = _add(anonymous, user)
    reply = anonymous.post(f"/v1/{asset['name']}:addTags", json={"tags": ["fine", tag]}, headers=user.headers)
    expect_error(reply, 400, 3, reason)
    assert _tags(anonymous, user, asset["name"]) == set()


# ---------------------------------------------------------------------------- the vocabulary


def test_the_vocabulary_is_bilingual_and_counts_are_per_user(anonymous, new_user, admin) -> None:
    alice, bob = new_user(), new_user()
    word = "kitten" + uuid.uuid4().hex[:4]
    tag = anonymous.post(
        "/v1/tags",
        json={"displayName": word, "displayNames": {"en": word, "zh": "小猫" + word[-4:]}, "category": "animal"},
        headers=alice.headers,
    ).json()
    for _ in range(3):
        anonymous.post(
            f"/v1/{_add(anonymous, alice)['name']}:addTags", json={"tags": [tag["name"]]}, headers=alice.headers
        )
    anonymous.post(f"/v1/{_add(anonymous, bob)['name']}:addTags", json={"tags": [word]}, headers=bob.headers)

    def count(account: Account) -> int:
        listed = anonymous.get("/v1/tags", params={"page_size": 1000}, headers=account.headers).json()["tags"]
        return next(int(t["usageCount"]) for t in listed if t["name"] == tag["name"])

    assert (count(alice), count(bob), count(admin)) == (3, 1, 4)
    # Autocomplete by prefix in either language, the name shown in the asker's language.
    zh = anonymous.get(
        "/v1/tags:autocomplete", params={"query": "小猫"}, headers={**alice.headers, "accept-language": "zh-CN"}
    ).json()
    assert tag["name"] in [s["tag"] for s in zh["suggestions"]]
    assert next(s for s in zh["suggestions"] if s["tag"] == tag["name"])["displayName"].startswith("小猫")
    en = anonymous.get("/v1/tags:autocomplete", params={"query": word[:4]}, headers=alice.headers).json()
    assert tag["name"] in [s["tag"] for s in en["suggestions"]]
    # Either name finds the photos.
    by_zh = anonymous.get("/v1/assets", params={"filter": f'tag = "小猫{word[-4:]}"'}, headers=alice.headers).json()
    assert len(by_zh["assets"]) == 3


def test_renaming_merging_and_deleting_tags_are_admin_operations(anonymous, new_user, admin) -> None:
    person = new_user()
    asset = _add(anonymous, person)
    base = uuid.uuid4().hex[:6]
    anonymous.post(
        f"/v1/{asset['name']}:addTags",
        json={"tags": [f"auto-{base}", f"car-{base}", f"tmp-{base}"]},
        headers=person.headers,
    )
    tags = {
        t["displayName"]: t["tag"] for t in anonymous.get(f"/v1/{asset['name']}", headers=person.headers).json()["tags"]
    }
    car, auto, tmp = tags[f"car-{base}"], tags[f"auto-{base}"], tags[f"tmp-{base}"]
    for method, path, body in (
        ("POST", f"/v1/{car}:rename", {"displayName": "x"}),
        ("POST", f"/v1/{car}:merge", {"sourceTags": [auto]}),
        ("DELETE", f"/v1/{tmp}", None),
    ):
        expect_error(anonymous.request(method, path, json=body, headers=person.headers), 403, 7, "ADMIN_REQUIRED")
    expect_error(
        anonymous.post(f"/v1/{car}:rename", json={"displayName": f"AUTO-{base}"}, headers=admin.headers),
        409,
        6,
        "TAG_NAME_TAKEN",
    )
    renamed = anonymous.post(
        f"/v1/{car}:rename",
        json={"displayName": f"automobile-{base}", "keepOldNameAsAlias": True},
        headers=admin.headers,
    ).json()
    assert renamed["displayName"] == f"automobile-{base}" and f"car-{base}" in renamed["aliases"]
    merged = anonymous.post(f"/v1/{car}:merge", json={"sourceTags": [auto]}, headers=admin.headers).json()
    assert merged["updatedAssetCount"] in ("1", 1)
    expect_error(anonymous.get(f"/v1/{auto}", headers=admin.headers), 404, 5, "TAG_NOT_FOUND")
    # The old names still find the merged tag.
    found = anonymous.get("/v1/assets", params={"filter": f'tag = "auto-{base}"'}, headers=person.headers).json()
    assert [a["name"] for a in found["assets"]] == [asset["name"]]
    assert anonymous.delete(f"/v1/{tmp}", headers=admin.headers).status_code == 200
    assert _tags(anonymous, person, asset["name"]) == {(f"automobile-{base}", "MANUAL")}


# ---------------------------------------------------------------------------- collections


def test_nested_collections_give_their_auto_tags_and_take_them_back(anonymous, new_user) -> None:
    person = new_user()
    trips = _collection(anonymous, person, "Trips", auto_tags=["travel"])
    japan = _collection(anonymous, person, "Japan", parent=trips["name"], auto_tags=["japan", "日本"])
    photo = _add(anonymous, person, tags=["travel"])  # the person tagged it "travel" too
    other = _add(anonymous, person)
    added = anonymous.post(
        f"/v1/{japan['name']}:addAssets", json={"selection": _names(photo, other)}, headers=person.headers
    )
    assert added.json()["succeededCount"] == "2"
    assert _tags(anonymous, person, other["name"]) == {
        ("japan", "COLLECTION"),
        ("日本", "COLLECTION"),
        ("travel", "COLLECTION"),
    }
    assert _tags(anonymous, person, photo["name"]) == {
        ("japan", "COLLECTION"),
        ("日本", "COLLECTION"),
        ("travel", "MANUAL"),
    }
    # Changing auto tags updates members; tags a person added stay.
    anonymous.patch(
        f"/v1/{japan['name']}",
        params={"update_mask": "auto_tags"},
        json={"autoTags": ["tokyo"]},
        headers=person.headers,
    ).raise_for_status()
    assert _tags(anonymous, person, other["name"]) == {("tokyo", "COLLECTION"), ("travel", "COLLECTION")}
    # Moving the collection to the root drops what it inherited from Trips.
    moved = anonymous.post(f"/v1/{japan['name']}:move", json={"newParent": ""}, headers=person.headers).json()
    assert not moved.get("parent")
    assert _tags(anonymous, person, other["name"]) == {("tokyo", "COLLECTION")}
    assert _tags(anonymous, person, photo["name"]) == {("tokyo", "COLLECTION"), ("travel", "MANUAL")}
    # Removing an asset takes its collection tags away.
    anonymous.post(f"/v1/{japan['name']}:removeAssets", json={"selection": _names(other)}, headers=person.headers)
    assert _tags(anonymous, person, other["name"]) == set()


def test_collection_trees_refuse_cycles_and_delete_as_asked(anonymous, new_user) -> None:
    person = new_user()
    root = _collection(anonymous, person, "Family")
    child = _collection(anonymous, person, "2024", parent=root["name"])
    grandchild = _collection(anonymous, person, "Summer", parent=child["name"], auto_tags=["summer"])
    photo = _add(anonymous, person, collection=grandchild["name"])
    for target in (child["name"], grandchild["name"], root["name"]):
        expect_error(
            anonymous.post(f"/v1/{root['name']}:move", json={"newParent": target}, headers=person.headers),
            400,
            3,
            "COLLECTION_CYCLE",
        )
    expect_error(
        anonymous.post("/v1/collections", json={"displayName": "2024", "parent": root["name"]}, headers=person.headers),
        409,
        6,
        "COLLECTION_NAME_TAKEN",
    )
    tree = anonymous.get("/v1/collections:tree", headers=person.headers).json()["nodes"]
    (family,) = [n for n in tree if n["collection"]["name"] == root["name"]]
    assert family["collection"]["totalAssetCount"] == "1" and family["collection"]["childCount"] == 1
    assert family["children"][0]["children"][0]["collection"]["coverAsset"] == photo["name"]
    expect_error(anonymous.delete(f"/v1/{child['name']}", headers=person.headers), 400, 9, "COLLECTION_HAS_CHILDREN")
    # Reparent: the grandchild moves up to Family; the photo stays, with its tag.
    anonymous.delete(f"/v1/{child['name']}", params={"children": "REPARENT"}, headers=person.headers).raise_for_status()
    moved = anonymous.get(f"/v1/{grandchild['name']}", headers=person.headers).json()
    assert moved["parent"] == root["name"]
    assert _tags(anonymous, person, photo["name"]) == {("summer", "COLLECTION")}
    # Cascade: the whole subtree goes; the photo stays, without the collection's tags.
    anonymous.delete(f"/v1/{root['name']}", params={"children": "CASCADE"}, headers=person.headers).raise_for_status()
    expect_error(anonymous.get(f"/v1/{grandchild['name']}", headers=person.headers), 404, 5)
    assert anonymous.get(f"/v1/{photo['name']}", headers=person.headers).json()["state"] == "ACTIVE"
    assert _tags(anonymous, person, photo["name"]) == set()


def test_collections_are_private_to_their_owner(anonymous, new_user) -> None:
    alice, bob = new_user(), new_user()
    album = _collection(anonymous, alice, "Private album")
    alices = _add(anonymous, alice)
    bobs = _add(anonymous, bob)
    for method, path, body in (
        ("GET", f"/v1/{album['name']}", None),
        ("PATCH", f"/v1/{album['name']}", {"displayName": "mine"}),
        ("POST", f"/v1/{album['name']}:addAssets", {"selection": _names(bobs)}),
        ("DELETE", f"/v1/{album['name']}", None),
    ):
        params = {"update_mask": "display_name"} if method == "PATCH" else None
        expect_error(anonymous.request(method, path, json=body, params=params, headers=bob.headers), 404, 5)
    assert album["name"] not in anonymous.get("/v1/collections", headers=bob.headers).text
    # Alice cannot put Bob's photo in her album (it would change his photo's tags).
    reply = anonymous.post(
        f"/v1/{album['name']}:addAssets", json={"selection": _names(bobs, alices)}, headers=alice.headers
    )
    results = {r["asset"]: r["status"] for r in reply.json()["results"]}
    assert results[alices["name"]]["code"] == 0 and results[bobs["name"]]["code"] == 5


# ---------------------------------------------------------------------------- listing


def test_filters_select_by_tags_collections_dates_and_state(anonymous, new_user) -> None:
    person = new_user()
    a = _add(anonymous, person, tags=["red", "car"])
    b = _add(anonymous, person, tags=["red", "boat"])
    c = _add(anonymous, person, tags=["blue", "car"])
    album = _collection(anonymous, person, "Vehicles")
    sub = _collection(anonymous, person, "Cars", parent=album["name"])
    anonymous.post(f"/v1/{sub['name']}:addAssets", json={"selection": _names(a, c)}, headers=person.headers)

    def names(filter_text: str, **params) -> set[str]:
        reply = anonymous.get(
            "/v1/assets", params={"filter": filter_text, "page_size": 500, **params}, headers=person.headers
        )
        assert reply.status_code == 200, (filter_text, reply.text)
        return {x["name"] for x in reply.json().get("assets", [])}

    assert names('tag = "red" AND tag = "car"') == {a["name"]}  # all of
    assert names('tag = "boat" OR tag = "blue"') == {b["name"], c["name"]}  # any of
    assert names('NOT tag = "red"') == {c["name"]}  # none of
    assert names(f'collection = "{album["name"]}"') == set()
    assert names(f'collection_tree = "{album["name"]}"') == {a["name"], c["name"]}
    assert names('tag_source = MANUAL AND content_type = "image/*"') == {a["name"], b["name"], c["name"]}
    assert names(f'create_time >= "{a["createTime"]}" AND create_time < "{c["createTime"]}"') == {a["name"], b["name"]}
    assert names("has_suggestions = true") == set()
    anonymous.delete(f"/v1/{b['name']}", headers=person.headers)
    assert names('tag = "red"') == {a["name"]}
    assert names("state = TRASHED", show_deleted="true") == {b["name"]}


def test_capture_time_ranges_select_and_order_photos_by_when_they_were_taken(anonymous, new_user) -> None:
    person = new_user()
    taken = {}
    for year in (2015, 2019, 2023):
        exif = exif_block(exif={0x9003: f"{year}:06:01 12:00:00"})  # DateTimeOriginal
        data = encode(photo().resize((64, 48)), "JPEG", exif=exif).getvalue()
        reply = upload(anonymous, person, data, f"{year}.jpg")
        assert reply.status_code == 200, reply.text
        taken[year] = reply.json()["name"]
    undated = _add(anonymous, person)["name"]

    def names(filter_text: str, order: str) -> list[str]:
        params = {"filter": filter_text, "order_by": order, "page_size": 1}
        seen, token = [], ""
        while True:
            page = anonymous.get("/v1/assets", params={**params, "page_token": token}, headers=person.headers).json()
            seen += [x["name"] for x in page.get("assets", [])]
            if not (token := page.get("nextPageToken", "")):
                return seen

    between = 'capture_time >= "2018-01-01T00:00:00Z" AND capture_time < "2024-01-01T00:00:00Z"'
    assert names(between, "capture_time desc") == [taken[2023], taken[2019]]
    assert names(between, "capture_time") == [taken[2019], taken[2023]]
    assert names(between, "create_time desc") == [taken[2023], taken[2019]]
    # Photos without a capture time match no range, so a negated range includes them.
    assert set(names('NOT capture_time < "2018-01-01T00:00:00Z"', "capture_time")) == {
        taken[2019],
        taken[2023],
        undated,
    }


def test_listing_pages_by_keyset_in_either_order(anonymous, new_user) -> None:
    person = new_user()
    created = [_add(anonymous, person)["name"] for _ in range(7)]

    def walk(order: str) -> list[str]:
        seen, token = [], ""
        while True:
            page = anonymous.get(
                "/v1/assets", params={"page_size": 3, "page_token": token, "order_by": order}, headers=person.headers
            ).json()
            seen += [x["name"] for x in page.get("assets", [])]
            if not (token := page.get("nextPageToken", "")):
                return seen
            _add(anonymous, person)  # new uploads never shift later pages

    assert walk("create_time desc")[-7:] == created[::-1]
    assert walk("create_time")[:7] == created
    assert set(walk("capture_time desc")) >= set(created)


def test_own_and_shared_assets_interleave_in_order_page_by_page(anonymous, new_user) -> None:
    alice, bob = new_user(), new_user()

    def share(name: str, visibility: str) -> None:
        params, body = {"update_mask": "visibility"}, {"visibility": visibility}
        reply = anonymous.patch(f"/v1/{name}", params=params, json=body, headers=bob.headers)
        assert reply.status_code == 200, reply.text

    shown, shared = [], []  # what alice sees, oldest first: all of hers, and two of bob's he shares
    for i in range(8):
        owner = alice if i % 2 == 0 else bob
        name = _add(anonymous, owner)["name"]
        if owner is bob and i % 4 == 1:
            share(name, "INSTANCE")
            shared.append(name)
        if owner is alice or name in shared:
            shown.append(name)
    only_theirs = f'owner = "{alice.name}" OR owner = "{bob.name}"'  # other tests may share things too

    def walk(order: str) -> list[str]:
        seen, token = [], ""
        while True:
            params = {"page_size": 2, "page_token": token, "order_by": order, "filter": only_theirs}
            page = anonymous.get("/v1/assets", params=params, headers=alice.headers).json()
            seen += [x["name"] for x in page.get("assets", [])]
            if not (token := page.get("nextPageToken", "")):
                return seen

    try:
        assert walk("create_time desc") == shown[::-1]
        assert walk("create_time") == shown
        assert walk("capture_time desc") == shown[::-1]  # no EXIF: captured counts as uploaded
        assert walk("capture_time") == shown
    finally:  # every new user of the shared stack would see them
        for name in shared:
            share(name, "PRIVATE")


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"page_size": -1}, "INVALID_PAGE_SIZE"),
        ({"page_token": "garbage"}, "INVALID_PAGE_TOKEN"),
        ({"filter": "tag ="}, "INVALID_FILTER"),
        ({"filter": "colour = red"}, "INVALID_FILTER"),
        ({"filter": 'create_time > "yesterday"'}, "INVALID_FILTER"),
        ({"filter": "(" * 40 + "state = ACTIVE" + ")" * 40}, "INVALID_FILTER"),
        ({"order_by": "filename"}, "INVALID_ORDER_BY"),
    ],
)
def test_bad_listing_requests_are_400(anonymous, user, params, reason) -> None:
    expect_error(anonymous.get("/v1/assets", params=params, headers=user.headers), 400, 3, reason)


def test_a_page_token_only_works_with_its_own_filter(anonymous, new_user) -> None:
    person = new_user()
    for _ in range(3):
        _add(anonymous, person)
    token = anonymous.get("/v1/assets", params={"page_size": 1}, headers=person.headers).json()["nextPageToken"]
    expect_error(
        anonymous.get(
            "/v1/assets",
            params={"page_size": 1, "page_token": token, "filter": "favorite = true"},
            headers=person.headers,
        ),
        400,
        3,
        "PAGE_TOKEN_MISMATCH",
    )
    # Huge page sizes are capped, not refused.
    assert anonymous.get("/v1/assets", params={"page_size": 10**9}, headers=person.headers).status_code == 200


# ---------------------------------------------------------------------------- batches and trash


def test_batches_by_name_report_per_item_and_the_rest_succeeds(anonymous, new_user) -> None:
    alice, bob = new_user(), new_user()
    mine = [_add(anonymous, alice) for _ in range(3)]
    theirs = _add(anonymous, bob)
    names = [m["name"] for m in mine] + [theirs["name"], "assets/not-a-uuid", f"assets/{uuid.uuid4()}"]
    reply = anonymous.post(
        "/v1/assets:batchDelete", json={"selection": {"names": {"names": names}}}, headers=alice.headers
    )
    body = reply.json()
    assert [r["asset"] for r in body["results"]] == names
    assert [r["status"].get("code", 0) for r in body["results"]] == [0, 0, 0, 5, 3, 5]
    assert (body["succeededCount"], body["failedCount"]) == ("3", "3")
    assert anonymous.get(f"/v1/{theirs['name']}", headers=bob.headers).json()["state"] == "ACTIVE"
    restored = anonymous.post(
        "/v1/assets:batchUndelete", json={"selection": _names(*mine)}, headers=alice.headers
    ).json()
    assert restored["succeededCount"] == "3"
    tagged = anonymous.post(
        "/v1/assets:batchAddTags", json={"selection": _names(*mine), "tags": ["batch"]}, headers=alice.headers
    ).json()
    assert tagged["succeededCount"] == "3"
    assert all(("batch", "MANUAL") in _tags(anonymous, alice, m["name"]) for m in mine)


def test_select_all_matching_applies_to_every_match_and_nothing_else(anonymous, new_user) -> None:
    person = new_user()
    keep = [_add(anonymous, person, tags=["keep"]) for _ in range(2)]
    drop = [_add(anonymous, person, tags=["drop"]) for _ in range(4)]
    reply = anonymous.post(
        "/v1/assets:batchDelete", json={"selection": {"filter": 'tag = "drop"'}}, headers=person.headers
    ).json()
    assert (reply["succeededCount"], reply.get("failedCount", "0"), reply.get("results", [])) == ("4", "0", [])
    states = {a["name"]: anonymous.get(f"/v1/{a['name']}", headers=person.headers).json()["state"] for a in keep + drop}
    assert [states[a["name"]] for a in keep] == ["ACTIVE"] * 2 and [states[a["name"]] for a in drop] == ["TRASHED"] * 4
    expect_error(
        anonymous.post("/v1/assets:batchDelete", json={"selection": {"filter": "tag = "}}, headers=person.headers),
        400,
        3,
        "INVALID_FILTER",
    )
    expect_error(anonymous.post("/v1/assets:batchDelete", json={"selection": {}}, headers=person.headers), 400, 3)


def _s3_keys(stack) -> set[str]:
    s3 = Minio(
        stack.s3.endpoint_url.split("://")[1],
        access_key=stack.s3.credentials.access_key,
        secret_key=stack.s3.credentials.secret_key,
        secure=False,
    )
    return {o.object_name for o in s3.list_objects("imgtag", recursive=True)}


def test_purging_removes_every_stored_copy_and_restore_brings_assets_back(stack, anonymous, new_user) -> None:
    person = new_user()
    asset = wait_until_processed(anonymous, _add(anonymous, person)["name"], person.headers)
    asset_id = asset["name"][7:]
    stored = {k for k in _s3_keys(stack) if asset_id in k}
    assert len(stored) >= 2  # the original and its thumbnail
    expect_error(anonymous.post(f"/v1/{asset['name']}:purge", json={}, headers=person.headers), 400, 9, "NOT_TRASHED")
    anonymous.delete(f"/v1/{asset['name']}", headers=person.headers).raise_for_status()
    restored = anonymous.post(f"/v1/{asset['name']}:undelete", json={}, headers=person.headers).json()
    assert restored["state"] == "ACTIVE" and not restored.get("deleteTime")
    anonymous.delete(f"/v1/{asset['name']}", headers=person.headers).raise_for_status()
    anonymous.post(f"/v1/{asset['name']}:purge", json={}, headers=person.headers).raise_for_status()
    expect_error(anonymous.get(f"/v1/{asset['name']}", headers=person.headers), 404, 5)
    assert not {k for k in _s3_keys(stack) if asset_id in k}


def test_empty_trash_and_retention_purge(stack, anonymous, new_user) -> None:
    person = new_user()
    trashed = [_add(anonymous, person) for _ in range(2)]
    kept = _add(anonymous, person)
    for asset in trashed:
        anonymous.delete(f"/v1/{asset['name']}", headers=person.headers).raise_for_status()
    emptied = anonymous.post("/v1/assets:emptyTrash", json={}, headers=person.headers).json()
    assert emptied["succeededCount"] == "2"
    assert anonymous.get(f"/v1/{kept['name']}", headers=person.headers).json()["state"] == "ACTIVE"
    # Past the retention: the janitor purges it without anyone asking.
    late = _add(anonymous, person)
    anonymous.delete(f"/v1/{late['name']}", headers=person.headers).raise_for_status()
    stack.postgres.query(
        f"UPDATE assets SET purge_time = now() - interval '1 minute' WHERE id = '{late['name'][7:]}'", "imgtag_catalog"
    )
    deadline = time.monotonic() + 20
    while anonymous.get(f"/v1/{late['name']}", headers=person.headers).status_code != 404:
        assert time.monotonic() < deadline, "the expired asset was not purged"
        time.sleep(0.5)


def test_empty_lists_and_zero_values_are_present_in_json(anonymous, new_user) -> None:
    """Clients read `assets` and `tags` without guarding for a missing key."""
    owner = new_user()
    listing = anonymous.get("/v1/assets", headers=owner.headers)
    assert listing.status_code == 200, listing.text
    assert listing.json()["assets"] == [] and listing.json()["nextPageToken"] == ""
    asset = _add(anonymous, owner)
    fetched = anonymous.get(f"/v1/{asset['name']}", headers=owner.headers).json()
    assert fetched["tags"] == [] and fetched["title"] == ""
    collections = anonymous.get("/v1/collections", headers=owner.headers).json()
    assert collections["collections"] == []
