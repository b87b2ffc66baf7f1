"""Listing latency through the gateway at 100k assets: ListAssets (REST `GET /v1/assets`) as a
signed-in user sees it, first page and a deep page (followed there by page tokens, as a person
scrolling does), without and with two filters (a tag and a capture-time range). Prints p50 and
p99 measured in this run, never pass/fail:

    .venv/bin/python bench/listing.py                      # 100k assets, 200 requests a case
    .venv/bin/python bench/listing.py --assets 20000 --samples 50

Uploading 100k photos would take hours, so the rows are written straight into the catalog's
PostgreSQL (COPY into the real schema, made by the catalog's own migrations) with a library's
shape: several owners (the measured user owns 60%, a few percent of the others' are shared with
the instance), about 20 tags of very different popularity with AI, confirmed and manual links,
uploads over three years partly in import bursts, capture times over a decade (some unknown), a
little trash. Then the tables are analysed, as autovacuum would after a bulk load, and every
request goes through Envoy, authentication and the catalog like any client's."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import secrets
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from ingestion import cpu_seconds_by_part, idle_cpu_rates  # bench/ingestion.py, next to this script

from imgtag_common.jobs import asyncpg_dsn
from imgtag_dev.stack import Stack
from imgtag_dev.testing import ADMIN_PASSWORD, Account, bench_stack, login, register_and_approve

# (English, Chinese, share of assets carrying it): a few common tags, a long tail of rare ones.
TAGS = [
    ("outdoor", "户外", 0.40),
    ("sky", "天空", 0.30),
    ("person", "人", 0.25),
    ("tree", "树", 0.20),
    ("building", "建筑", 0.15),
    ("water", "水", 0.12),
    ("city", "城市", 0.10),
    ("food", "食物", 0.08),
    ("beach", "海滩", 0.07),
    ("mountain", "山", 0.06),
    ("child", "儿童", 0.05),
    ("car", "汽车", 0.05),
    ("flower", "花", 0.04),
    ("dog", "狗", 0.04),
    ("cat", "猫", 0.03),
    ("sunset", "日落", 0.03),
    ("night", "夜晚", 0.03),
    ("snow", "雪", 0.02),
    ("bird", "鸟", 0.02),
    ("document", "文档", 0.01),
]
NOW = datetime(2026, 6, 1, tzinfo=UTC)
# What the catalog keeps of a phone photo's EXIF (flattened names, JSON; about 1.3 KB), varied per row.
EXIF = {
    "Make": "Apple",
    "Model": "iPhone 15 Pro",
    "Orientation": 1,
    "XResolution": 72.0,
    "YResolution": 72.0,
    "ResolutionUnit": 2,
    "Software": "17.5.1",
    "HostComputer": "iPhone 15 Pro",
    "YCbCrPositioning": 1,
    "ExposureTime": 0.008333,
    "FNumber": 1.78,
    "ExposureProgram": 2,
    "ISOSpeedRatings": 64,
    "ExifVersion": "0232",
    "OffsetTime": "+08:00",
    "OffsetTimeOriginal": "+08:00",
    "OffsetTimeDigitized": "+08:00",
    "ShutterSpeedValue": 6.906,
    "ApertureValue": 1.66,
    "BrightnessValue": 7.21,
    "ExposureBiasValue": 0.0,
    "MeteringMode": 5,
    "Flash": 16,
    "FocalLength": 6.86,
    "SubjectArea": [2009, 1502, 2208, 1327],
    "SubsecTimeOriginal": "512",
    "SubsecTimeDigitized": "512",
    "ColorSpace": 65535,
    "ExifImageWidth": 4032,
    "ExifImageHeight": 3024,
    "SensingMethod": 2,
    "SceneType": 1,
    "ExposureMode": 0,
    "WhiteBalance": 0,
    "FocalLengthIn35mmFilm": 24,
    "LensSpecification": [2.22, 9.0, 1.78, 2.8],
    "LensMake": "Apple",
    "LensModel": "iPhone 15 Pro back triple camera 6.86mm f/1.78",
    "CompositeImage": 2,
    "GPSLatitudeRef": "N",
    "GPSLatitude": [31.0, 13.0, 51.45],
    "GPSLongitudeRef": "E",
    "GPSLongitude": [121.0, 28.0, 30.12],
    "GPSAltitudeRef": 0,
    "GPSAltitude": 12.8,
    "GPSSpeedRef": "K",
    "GPSSpeed": 0.0,
    "GPSImgDirectionRef": "T",
    "GPSImgDirection": 187.5,
    "GPSDestBearingRef": "T",
    "GPSDestBearing": 187.5,
    "GPSHPositioningError": 4.7,
}
# The filtered cases: a tag in the middle of the popularity range and six years of capture time.
TWO_FILTERS = 'tag = "tree" AND capture_time >= "2018-01-01T00:00:00Z" AND capture_time < "2024-01-01T00:00:00Z"'


# ---------------------------------------------------------------------------- seeding


def asset_rows(count: int, owners: Sequence[str], rng: random.Random) -> list[tuple]:
    """Rows for COPY into assets (the columns of ASSET_COLUMNS)."""
    bursts = [NOW - timedelta(days=rng.uniform(0, 3 * 365)) for _ in range(25)]
    weights = [0.6] + [0.4 / (len(owners) - 1)] * (len(owners) - 1) if len(owners) > 1 else [1.0]
    rows = []
    for _ in range(count):
        asset_id = uuid.UUID(bytes=rng.randbytes(16), version=4)
        owner = rng.choices(owners, weights)[0]
        if rng.random() < 0.3:  # an import: many uploads within a couple of hours
            created = rng.choice(bursts) + timedelta(seconds=rng.uniform(0, 7200))
        else:
            created = NOW - timedelta(seconds=rng.uniform(0, 3 * 365 * 86400))
        roll = rng.random()
        if roll < 0.05:
            captured = None
        elif roll < 0.55:  # phone uploads: taken shortly before
            captured = created - timedelta(seconds=rng.uniform(0, 7 * 86400))
        else:  # old photos: anywhere in the decade before the upload
            captured = created - timedelta(seconds=rng.uniform(0, 10 * 365 * 86400))
        trashed = rng.random() < 0.02
        shared = owner != owners[0] and rng.random() < 0.05
        width, height = rng.choice([(4000, 3000), (3000, 4000), (4032, 3024), (6000, 4000), (1920, 1080)])
        rows.append(
            (
                asset_id,
                owner,
                f"IMG_{rng.randrange(10000):04d}.jpg",
                "image/jpeg",
                rng.randrange(1_000_000, 12_000_000),
                hashlib.sha256(asset_id.bytes).hexdigest(),
                width,
                height,
                "trashed" if trashed else "active",
                f"originals/{asset_id}",
                created,
                created,
                created + timedelta(days=3) if trashed else None,
                created + timedelta(days=33) if trashed else None,
                "instance" if shared else "private",
                captured,
                captured is not None,
                rng.choice(["Apple", "Canon", "SONY", "FUJIFILM", ""]),
                f"thumbnails/{asset_id}",
                f"previews/{asset_id}",
                "completed",
                "succeeded",
                "skipped",  # no captioning provider: a library at rest has no work queued
                created + timedelta(minutes=2),
                json.dumps({**EXIF, "DateTimeOriginal": f"{captured or created:%Y:%m:%d %H:%M:%S}"}),
            )
        )
    return rows


ASSET_COLUMNS = [
    "id",
    "owner",
    "filename",
    "content_type",
    "size_bytes",
    "sha256",
    "width",
    "height",
    "state",
    "object_key",
    "create_time",
    "update_time",
    "delete_time",
    "purge_time",
    "visibility",
    "capture_time",
    "capture_time_zone_known",
    "camera_make",
    "thumbnail_key",
    "preview_key",
    "processing_state",
    "analysis_state",
    "caption_state",
    "analysis_time",
    "exif",
]
TAG_COLUMNS = ["asset_id", "tag_id", "source", "state", "confidence", "model", "create_time"]


def tag_rows(assets: Sequence[tuple], tag_ids: Sequence[uuid.UUID], rng: random.Random) -> list[tuple]:
    """Links for COPY into asset_tags: mostly AI suggestions, some confirmed, some manual, a few rejected."""
    rows = []
    for asset in assets:
        asset_id, created = asset[0], asset[10]
        for tag_id, (_, _, share) in zip(tag_ids, TAGS, strict=True):
            if rng.random() >= share:
                continue
            roll = rng.random()
            if roll < 0.55:
                source, state = "ai", "suggested"
            elif roll < 0.78:
                source, state = "ai", "confirmed"
            elif roll < 0.97:
                source, state = "manual", "confirmed"
            else:
                source, state = "ai", "rejected"
            confidence = 1.0 if source == "manual" else round(rng.uniform(0.3, 0.99), 3)
            model = "" if source == "manual" else "siglip2-base"
            rows.append((asset_id, tag_id, source, state, confidence, model, created))
    return rows


async def seed(database_url: str, count: int, owners: Sequence[str], tag_ids: Sequence[uuid.UUID]) -> int:
    """COPY `count` assets and their tag links into the catalog's database; returns the link count."""
    rng = random.Random(7)
    assets = asset_rows(count, owners, rng)
    links = tag_rows(assets, tag_ids, rng)
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with connection.transaction():
            await connection.copy_records_to_table("assets", records=assets, columns=ASSET_COLUMNS)
            await connection.copy_records_to_table("asset_tags", records=links, columns=TAG_COLUMNS)
        await connection.execute("VACUUM ANALYZE assets, asset_tags, tags")
    finally:
        await connection.close()
    return len(links)


# ---------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Latencies:
    case: str
    page: int
    milliseconds: list[float]
    cpu_ms: dict[str, float]  # CPU milliseconds per request, by part of the stack

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.milliseconds)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def get_page(http: httpx.Client, params: dict[str, str | int]) -> tuple[float, dict]:
    started = time.perf_counter()
    reply = http.get("/v1/assets", params=params)
    elapsed = 1000 * (time.perf_counter() - started)
    reply.raise_for_status()
    return elapsed, reply.json()


def walk(http: httpx.Client, params: dict[str, str | int], deepest: int) -> tuple[int, str, list[float]]:
    """Follow page tokens from the first page to page `deepest` (or the last one): (that page's
    number, its token, each page's milliseconds on the way)."""
    token, page, on_the_way = "", 1, []
    while page < deepest:
        elapsed, body = get_page(http, {**params, "page_token": token})
        on_the_way.append(elapsed)
        following = body.get("nextPageToken", "")
        if not following:
            break
        token, page = following, page + 1
    return page, token, on_the_way


def repeat(http: httpx.Client, params: dict[str, str | int], samples: int) -> list[float]:
    for _ in range(5):  # warm-up: connections, caches, prepared statements
        get_page(http, params)
    return [get_page(http, params)[0] for _ in range(samples)]


def measure(
    gateway_url: str, sign_in: Callable[[], Account], page_size: int, deep_page: int, samples: int
) -> tuple[list[Latencies], list[tuple[str, str, str]]]:
    """Latencies of every case, and (filter, order, page token) of each first and deep page.
    Each case signs in afresh: a whole run outlasts an access token."""
    results, pages = [], []
    idle = idle_cpu_rates(os.getpid())

    def timed(case: str, page: int, http: httpx.Client, params: dict[str, str | int]) -> None:
        before, started = cpu_seconds_by_part(os.getpid()), time.perf_counter()
        milliseconds = repeat(http, params, samples)
        after, elapsed = cpu_seconds_by_part(os.getpid()), time.perf_counter() - started
        spent = {part: after[part] - before.get(part, 0.0) - idle.get(part, 0.0) * elapsed for part in after}
        used = {part: 1000 * max(0.0, seconds) / len(milliseconds) for part, seconds in spent.items()}
        results.append(Latencies(case, page, milliseconds, used))

    for filter_text in ("", TWO_FILTERS):
        for order in ("create_time desc", "capture_time desc"):
            params: dict[str, str | int] = {"page_size": page_size, "order_by": order}
            if filter_text:
                params["filter"] = filter_text
            case = f"{'two filters' if filter_text else 'no filter'}, {order}"
            with httpx.Client(base_url=gateway_url, timeout=60, headers=sign_in().headers) as http:
                timed(case, 1, http, params)
                page, token, on_the_way = walk(http, params, deep_page)
            results.append(Latencies(case + " (walking there)", -page, on_the_way, {}))
            with httpx.Client(base_url=gateway_url, timeout=60, headers=sign_in().headers) as http:
                timed(case, page, http, {**params, "page_token": token})
            pages += [(filter_text, order, ""), (filter_text, order, token)]
    return results, pages


async def explain(database_url: str, user: str, cases: Sequence[tuple[str, str, str]]) -> None:
    """EXPLAIN ANALYZE of the catalog's own listing statement for each (filter, order, page token)."""
    from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

    from imgtag_catalog.db.repository import list_page_query
    from imgtag_catalog.domain.visibility import ViewScope
    from imgtag_common.filtering import parse_filter
    from imgtag_common.pagination import decode_cursor, query_fingerprint

    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        for filter_text, order, token in cases:
            parsed = parse_filter(filter_text)
            sort, _, direction = order.partition(" ")
            statement = list_page_query(
                scope=ViewScope(owner=user, include_shared=True),
                filters=[parsed] if parsed is not None else [],
                sort=sort,
                descending=direction == "desc",
                cursor=decode_cursor(token, query_fingerprint(filter_text, order, False)),
                limit=101,
                include_trashed=False,
            )
            compiled = statement.compile(dialect=asyncpg_dialect.dialect(), compile_kwargs={"render_postcompile": True})
            arguments = [compiled.params[name] for name in compiled.positiontup or ()]
            plan = await connection.fetch("EXPLAIN (ANALYZE, BUFFERS) " + compiled.string, *arguments)
            print(f"\n-- {filter_text or 'no filter'}, {order}, {'deep page' if token else 'first page'}")
            print("\n".join(row[0] for row in plan))
    finally:
        await connection.close()


def create_tags(gateway_url: str, user: Account) -> list[uuid.UUID]:
    ids = []
    with httpx.Client(base_url=gateway_url, timeout=30, headers=user.headers) as http:
        for english, chinese, _ in TAGS:
            reply = http.post("/v1/tags", json={"displayName": english, "displayNames": {"en": english, "zh": chinese}})
            reply.raise_for_status()
            ids.append(uuid.UUID(reply.json()["name"].removeprefix("tags/")))
    return ids


def run(stack: Stack, args: argparse.Namespace) -> list[Latencies]:
    admin = login(stack.gateway_url, "admin", ADMIN_PASSWORD)
    people = [
        register_and_approve(stack.gateway_url, admin, f"bench{i}-{secrets.token_hex(3)}") for i in range(args.owners)
    ]
    tag_ids = create_tags(stack.gateway_url, people[0])
    started = time.perf_counter()
    links = asyncio.run(seed(stack.database_url("imgtag_catalog"), args.assets, [p.name for p in people], tag_ids))
    print(f"seeded {args.assets} assets and {links} tag links in {time.perf_counter() - started:.0f} s")
    user = people[0]
    results, pages = measure(
        stack.gateway_url,
        lambda: login(stack.gateway_url, user.username, user.password),
        args.page_size,
        args.deep_page,
        args.samples,
    )
    if args.explain:
        asyncio.run(explain(stack.database_url("imgtag_catalog"), user.name, pages))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, default=100_000, help="assets to seed (default 100000)")
    parser.add_argument("--owners", type=int, default=5, help="users owning them (the first is measured)")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--deep-page", type=int, default=500, help="page to reach by following tokens")
    parser.add_argument("--samples", type=int, default=200, help="requests per measured case")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of each page's statement")
    parser.add_argument("--keep", action="store_true", help="keep the stack's data directory (logs)")
    args = parser.parse_args()

    with bench_stack(keep=args.keep) as stack:
        load_before = os.getloadavg()
        results = run(stack, args)
        load_after = os.getloadavg()

    print(f"\nListAssets through the gateway, {args.page_size} per page, the user owning 60% of {args.assets}:")
    print(f"two filters: {TWO_FILTERS}")
    print("CPU: milliseconds per request of each part of the stack, less what it uses when idle")
    print(f"{'case':<48}{'page':>6}{'requests':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}  CPU ms per request")
    for result in results:
        page = f"1-{-result.page}" if result.page < 0 else str(result.page)
        cpu = "  ".join(f"{part} {ms:.1f}" for part, ms in sorted(result.cpu_ms.items(), key=lambda kv: -kv[1]) if ms)
        print(
            f"{result.case:<48}{page:>6}{len(result.milliseconds):>10}"
            f"{statistics.median(result.milliseconds):>9.1f}{result.percentile(0.99):>9.1f}"
            f"{max(result.milliseconds):>9.1f}  {cpu}"
        )
    print(
        f"load average: {load_before[0]:.1f} before seeding; {load_after[0]:.1f} {load_after[1]:.1f} "
        f"{load_after[2]:.1f} (1, 5, 15 min) at the end, on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
