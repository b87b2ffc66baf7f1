import random
import uuid
from collections import Counter

from imgtag_storage.domain.models import Endpoint, EndpointKind, EndpointRole
from imgtag_storage.domain.service import read_order


def _endpoint(priority: int, weight: int, label: str) -> Endpoint:
    return Endpoint(
        id=uuid.uuid4(),
        display_name=label,
        kind=EndpointKind.LOCAL,
        role=EndpointRole.PRIMARY,
        config={"root": "/x"},
        read_priority=priority,
        read_weight=weight,
    )


def test_lower_priority_is_always_read_first() -> None:
    fast, slow = _endpoint(1, 1, "fast"), _endpoint(5, 100, "slow")
    for seed in range(20):
        assert [e.display_name for e in read_order([slow, fast], random.Random(seed))] == ["fast", "slow"]


def test_equal_priority_is_shared_by_weight() -> None:
    heavy, light = _endpoint(1, 3, "heavy"), _endpoint(1, 1, "light")
    rng = random.Random(7)
    firsts = Counter(read_order([heavy, light], rng)[0].display_name for _ in range(4000))
    assert 0.70 < firsts["heavy"] / 4000 < 0.80  # expected 3/4


def test_every_endpoint_appears_once() -> None:
    endpoints = [_endpoint(p, w, f"{p}-{w}") for p in (1, 2) for w in (0, 1, 5)]
    ordered = read_order(endpoints, random.Random(1))
    assert sorted(e.display_name for e in ordered) == sorted(e.display_name for e in endpoints)
    assert [e.read_priority for e in ordered] == sorted(e.read_priority for e in ordered)
