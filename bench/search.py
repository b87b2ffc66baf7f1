"""Search at 100k assets: SearchAssets (REST `POST /v1/assets:search`) latency through the gateway
as a signed-in user sees it, without and with two filters, and recall@10 of the HNSW index scan
the catalog makes against exact search over the same rows. Prints figures, never pass/fail:

    .venv/bin/python bench/search.py                       # 100k assets, 200 requests a case
    .venv/bin/python bench/search.py --assets 20000 --samples 50

The library is bench/listing.py's (rows COPYed into the real schema: several owners, tags of very
different popularity, a decade of capture times, a little trash). Each asset also gets its text
embedding from the real inference service (Universal Sentence Encoder Multilingual, as the
pipeline makes it: its tags in English and Chinese plus a short caption drawn from varied
phrases), and the space's HNSW index is made by the catalog's own code (SearchRepository), with
its parameters. Latency is measured for each --candidates value (the catalog's
search_candidates: how many candidates each list contributes, which sets the depth of the
index scans), the catalog restarted in between. Queries are everyday descriptions in English and
Chinese that name no tag verbatim, so the tag match and the vector search both work as for users.

Recall@10: for each query (embedded by the inference service) and filter, the 10 nearest assets
the catalog's `nearest()` returns (HNSW, ef_search 100, iterative scan) against the 10 nearest
by exact distance (the same statement with index scans turned off)."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
import httpx
from listing import TAGS, TWO_FILTERS, create_tags, seed  # bench/listing.py, next to this script
from pgvector.asyncpg import register_vector
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from imgtag.inference.v1 import inference_pb2, inference_pb2_grpc
from imgtag_catalog.db.search_repository import SearchRepository
from imgtag_catalog.domain.visibility import ViewScope
from imgtag_common.filtering import parse_filter
from imgtag_common.jobs import asyncpg_dsn
from imgtag_common.service_tokens import ServiceTokens
from imgtag_dev.stack import Stack
from imgtag_dev.testing import ADMIN_PASSWORD, as_service, bench_stack, channel_as, login, register_and_approve

# Pieces of captions, as a vision-language model or a person writes them (combined at random).
SUBJECTS = [
    "a family",
    "two friends",
    "an old man",
    "a little girl",
    "a group of hikers",
    "a street musician",
    "a cyclist",
    "a couple",
    "a fisherman",
    "students",
    "一家人",
    "两个朋友",
    "一位老人",
    "小女孩",
    "游客",
]
SCENES = [
    "on a sandy beach at dusk",
    "in a busy market",
    "beside a mountain lake",
    "in a snowy forest",
    "at a birthday party",
    "in a quiet library",
    "on a rainy city street",
    "in a flower garden",
    "at the train station",
    "in a cozy kitchen",
    "在海边",
    "在公园里",
    "在雪山下",
    "在城市的夜晚",
    "在咖啡馆",
]
DETAILS = [
    "with warm light",
    "under a clear blue sky",
    "with colorful lanterns",
    "in black and white",
    "with reflections in the water",
    "with a long exposure",
    "阳光明媚",
    "灯火通明",
    "雾气弥漫",
    "",
]
# Everyday searches in both languages; none is a tag's name verbatim.
QUERIES = [
    "sunset over the sea",
    "kids playing outside",
    "snowy mountains",
    "my dog in the park",
    "city lights at night",
    "birthday cake and candles",
    "people at the market",
    "a walk in the forest",
    "cats sleeping",
    "lunch with friends",
    "old buildings downtown",
    "flowers in spring",
    "海边的日落",
    "孩子们在玩耍",
    "雪山风景",
    "公园里的小狗",
    "城市夜景",
    "生日聚会",
    "森林里散步",
    "春天的花",
]


def caption(rng: random.Random) -> str:
    return " ".join(p for p in (rng.choice(SUBJECTS), rng.choice(SCENES), rng.choice(DETAILS)) if p)


async def embed(
    stub: inference_pb2_grpc.InferenceServiceStub, texts: Sequence[str]
) -> tuple[str, str, list[list[float]]]:
    reply = await stub.EmbedTexts(inference_pb2.EmbedTextsRequest(texts=list(texts)), timeout=120)
    first = reply.embeddings[0]
    return first.embedding_space, first.model, [list(e.values) for e in reply.embeddings]


async def seed_vectors(stack: Stack, batch: int = 256) -> tuple[str, int]:
    """Gives every seeded asset in the library (not the trash, which the catalog purges meanwhile)
    its text embedding (tags in both languages + a caption), COPYed in, then has the catalog make
    the space's HNSW index; returns the space and the count."""
    names = {english: (english, chinese) for english, chinese, _ in TAGS}
    dsn = asyncpg_dsn(stack.database_url("imgtag_catalog"))
    connection = await asyncpg.connect(dsn)
    await register_vector(connection)
    rows = await connection.fetch(
        "SELECT a.id, coalesce(string_agg(t.display_name, ' ' ORDER BY t.display_name), '') AS tags "
        "FROM assets a LEFT JOIN asset_tags l ON l.asset_id = a.id AND l.state <> 'rejected' "
        "LEFT JOIN tags t ON t.id = l.tag_id WHERE a.state = 'active' GROUP BY a.id"
    )
    rng = random.Random(11)
    texts = []
    for row in rows:
        words = [w for name in row["tags"].split() for w in names.get(name, (name,))]
        texts.append(". ".join(p for p in (", ".join(words), caption(rng)) if p))
    tokens = ServiceTokens("bench", stack.service_secret)
    space = model = ""
    records = []
    now = datetime.now(UTC)
    async with channel_as(stack.service_target("inference"), as_service(tokens)) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        for start in range(0, len(texts), batch):
            space, model, vectors = await embed(stub, texts[start : start + batch])
            for row, vector in zip(rows[start : start + batch], vectors, strict=True):
                records.append((row["id"], space, "text", model, len(vector), vector, now))
    try:
        await connection.copy_records_to_table(
            "asset_vectors",
            records=records,
            columns=["asset_id", "space", "kind", "model", "dimension", "embedding", "update_time"],
        )
        await connection.execute("ANALYZE asset_vectors")
    finally:
        await connection.close()
    engine = create_async_engine(stack.database_url("imgtag_catalog"))
    try:
        started = time.perf_counter()
        repository = SearchRepository(engine, async_sessionmaker(engine))
        await repository.ensure_index(space=space, dimension=len(records[0][5]))
        print(f"HNSW index over {len(records)} vectors made in {time.perf_counter() - started:.0f} s")
    finally:
        await engine.dispose()
    return space, len(records)


async def recall_at_10(stack: Stack, space: str, owner: str, filters: Sequence[str]) -> dict[str, float]:
    """Mean recall@10 of the catalog's HNSW search against exact search, per filter."""
    tokens = ServiceTokens("bench", stack.service_secret)
    async with channel_as(stack.service_target("inference"), as_service(tokens)) as channel:
        _, _, query_vectors = await embed(inference_pb2_grpc.InferenceServiceStub(channel), QUERIES)
    url = stack.database_url("imgtag_catalog")
    approximate = create_async_engine(url)
    # The same statements with index scans off: the planner can only scan and sort, exactly.
    exact = create_async_engine(
        url, connect_args={"server_settings": {"enable_indexscan": "off", "enable_bitmapscan": "off"}}
    )
    scope = ViewScope(owner=owner, include_shared=True)
    results = {}
    try:
        fast = SearchRepository(approximate, async_sessionmaker(approximate))
        slow = SearchRepository(exact, async_sessionmaker(exact))
        for filter_text in filters:
            expr = [e for e in [parse_filter(filter_text)] if e is not None]
            recalls = []
            for vector in query_vectors:
                kwargs = {"space": space, "query": vector, "scope": scope, "filters": expr, "limit": 10}
                found = {a for a, _ in await fast.nearest(**kwargs, min_similarity=-1.0)}
                truth = {a for a, _ in await slow.nearest(**kwargs, min_similarity=-1.0)}
                recalls.append(len(found & truth) / max(1, len(truth)))
            results[filter_text or "(none)"] = statistics.fmean(recalls)
    finally:
        await approximate.dispose()
        await exact.dispose()
    return results


def latencies(gateway_url: str, headers: dict[str, str], filter_text: str, samples: int) -> tuple[list[float], int]:
    """Milliseconds per SearchAssets request (page of 50), cycling through the queries after one
    warm-up round; and how many results the last round returned in all."""
    times: list[float] = []
    found = 0
    with httpx.Client(base_url=gateway_url, timeout=30, headers=headers) as http:
        for i in range(samples + len(QUERIES)):
            query = QUERIES[i % len(QUERIES)]
            started = time.perf_counter()
            reply = http.post("/v1/assets:search", json={"query": query, "filter": filter_text, "pageSize": 50})
            elapsed = (time.perf_counter() - started) * 1000
            reply.raise_for_status()
            if i >= len(QUERIES):
                times.append(elapsed)
            if i >= samples:
                found += len(reply.json().get("results", []))
    return times, found


def use_candidates(stack: Stack, candidates: int) -> None:
    """Restarts the catalog with IMGTAG_CATALOG_SEARCH_CANDIDATES = `candidates`."""
    catalog = stack.services["catalog"]
    assert catalog.process is not None
    catalog.process.stop()
    catalog.env["IMGTAG_CATALOG_SEARCH_CANDIDATES"] = str(candidates)
    catalog.start(stack.logs_dir / "catalog.log")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, default=100_000, help="assets to seed (default 100000)")
    parser.add_argument("--owners", type=int, default=5, help="users owning them (the first is measured)")
    parser.add_argument("--samples", type=int, default=200, help="requests per measured case")
    parser.add_argument(
        "--candidates",
        type=int,
        nargs="+",
        default=[300, 100],
        help="catalog search_candidates values to measure (the catalog restarts between them)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the stack's data directory (logs)")
    args = parser.parse_args()

    filters = ["", TWO_FILTERS]
    with bench_stack(keep=args.keep) as stack:
        admin = login(stack.gateway_url, "admin", ADMIN_PASSWORD)
        people = [
            register_and_approve(stack.gateway_url, admin, f"bench{i}-{uuid.uuid4().hex[:6]}")
            for i in range(args.owners)
        ]
        tag_ids = create_tags(stack.gateway_url, people[0])
        started = time.perf_counter()
        owners = [p.name for p in people]
        asyncio.run(seed(stack.database_url("imgtag_catalog"), args.assets, owners, tag_ids))
        space, vectors = asyncio.run(seed_vectors(stack))
        seconds = time.perf_counter() - started
        print(f"seeded {args.assets} assets with {vectors} vectors ({space}) in {seconds:.0f} s")
        user = login(stack.gateway_url, people[0].username, people[0].password)
        load_before = os.getloadavg()
        measured = {}
        for candidates in args.candidates:
            use_candidates(stack, candidates)
            for f in filters:
                measured[(candidates, f)] = latencies(stack.gateway_url, user.headers, f, args.samples)
        load_after = os.getloadavg()
        recall = asyncio.run(recall_at_10(stack, space, user.name, filters))

    print(f"\nSearchAssets through the gateway, 50 per page, the user owning 60% of {args.assets}:")
    print(f"{len(QUERIES)} queries (English and Chinese); two filters: {TWO_FILTERS}")
    print(
        f"{'candidates':>10}  {'filter':<8}{'requests':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'results/query':>15}{'recall@10':>11}"
    )
    for (candidates, filter_text), (times, found) in measured.items():
        label = "two" if filter_text else "none"
        print(
            f"{candidates:>10}  {label:<8}{len(times):>10}{statistics.median(times):>9.1f}"
            f"{percentile(times, 0.99):>9.1f}{max(times):>9.1f}{found / len(QUERIES):>15.1f}"
            f"{recall[filter_text or '(none)']:>11.3f}"
        )
    print("recall@10: the catalog's HNSW scan of 10 against exact search (it does not depend on candidates)")
    print(f"load average: {load_before[0]:.1f} before measuring, {load_after[0]:.1f} after, on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
