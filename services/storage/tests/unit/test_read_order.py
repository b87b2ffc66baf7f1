import random
from collections import Counter

from imgtag_storage.domain.models import Endpoint, EndpointRole, HealthState, LocalConfig
from imgtag_storage.domain.reading import read_order


def _endpoint(priority: int, weight: int, label: str, health: HealthState = HealthState.HEALTHY) -> Endpoint:
    return Endpoint(
        id=label,
        display_name=label,
        role=EndpointRole.PRIMARY,
        config=LocalConfig(root_path="/x"),
        read_priority=priority,
        read_weight=weight,
        health_state=health,
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


def test_weight_zero_is_read_only_after_the_weighted_ones() -> None:
    zero, one = _endpoint(1, 0, "zero"), _endpoint(1, 1, "one")
    for seed in range(20):
        assert [e.display_name for e in read_order([zero, one], random.Random(seed))] == ["one", "zero"]


def test_unreachable_endpoints_are_tried_last_whatever_their_priority() -> None:
    down = _endpoint(0, 5, "down", HealthState.UNREACHABLE)
    up = _endpoint(50, 1, "up")
    assert [e.display_name for e in read_order([down, up], random.Random(3))] == ["up", "down"]
