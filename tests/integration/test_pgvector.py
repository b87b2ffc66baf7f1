"""The embedded PostgreSQL's pgvector really works on this CPU: HNSW builds, inserts and filtered
iterative scans, with the recall an index should have. The wheel's own vector.so was compiled
for AVX-512 and died with SIGILL on other x86-64 CPUs (scripts/build-pgvector.sh replaces it);
this test is what would have caught that."""

from __future__ import annotations

import random

import pytest

pytestmark = pytest.mark.integration

DIMENSION = 64
ROWS = 3000


def _vector(rng: random.Random) -> str:
    """Near one of 40 centres, as embeddings of photos cluster around what they show."""
    centre = random.Random(rng.randrange(40)).choices(range(-9, 10), k=DIMENSION)
    return "[" + ",".join(f"{c / 10 + rng.gauss(0, 0.25):.5f}" for c in centre) + "]"


def test_hnsw_build_insert_and_filtered_iterative_scan(stack) -> None:
    rng = random.Random(7)
    db = "imgtag_catalog"
    sql = stack.postgres.query
    sql("DROP TABLE IF EXISTS pgvector_check", db)
    sql(f"CREATE TABLE pgvector_check (id int PRIMARY KEY, tag int, v vector({DIMENSION}))", db)
    try:
        rows = ",".join(f"({i}, {i % 10}, '{_vector(rng)}')" for i in range(ROWS // 2))
        sql(f"INSERT INTO pgvector_check VALUES {rows}", db)
        sql("CREATE INDEX pgvector_check_hnsw ON pgvector_check USING hnsw (v vector_cosine_ops)", db)
        # Inserts into a built index take the graph-insert path.
        rows = ",".join(f"({i}, {i % 10}, '{_vector(rng)}')" for i in range(ROWS // 2, ROWS))
        sql(f"INSERT INTO pgvector_check VALUES {rows}", db)
        sql("ANALYZE pgvector_check", db)

        hits = total = 0
        for _ in range(10):
            query = _vector(rng)
            nearest = (
                "SELECT string_agg(id::text, ',') FROM (SELECT id FROM pgvector_check WHERE tag = 3 "
                f"ORDER BY v <=> '{query}' LIMIT 10) best"
            )
            exact = sql(f"SET enable_indexscan = off; {nearest}", db)
            indexed = sql(
                "SET hnsw.iterative_scan = relaxed_order; SET hnsw.ef_search = 100; SET enable_seqscan = off; "
                + nearest,
                db,
            )
            # A filter keeping 1 row in 10 still fills the page: the scan iterates.
            assert len(indexed.split(",")) == 10, indexed
            hits += len(set(exact.split(",")) & set(indexed.split(",")))
            total += 10
        # A sanity floor on synthetic clusters; bench/ measures recall on real embeddings.
        assert hits / total >= 0.8, f"recall@10 {hits / total:.2f}"
        plan = sql(
            f"SET enable_seqscan = off; EXPLAIN SELECT id FROM pgvector_check ORDER BY v <=> '{query}' LIMIT 5", db
        )
        assert "pgvector_check_hnsw" in plan
    finally:
        sql("DROP TABLE IF EXISTS pgvector_check", db)
