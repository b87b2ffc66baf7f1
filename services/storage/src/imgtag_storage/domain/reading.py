"""Which replica a read comes from: lowest read_priority first, then a weighted random order by
read_weight among equals (weight 0: only after every weighted one), endpoints that are known
to be unreachable last of all (their health may be stale, so they are still tried)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from imgtag_storage.domain.models import Endpoint

_rng = random.Random()


def read_order(candidates: Sequence[Endpoint], rng: random.Random | None = None) -> list[Endpoint]:
    rng = rng or _rng
    ordered: list[Endpoint] = []
    for readable in (True, False):
        pool = [e for e in candidates if e.readable is readable]
        for priority in sorted({e.read_priority for e in pool}):
            group = [e for e in pool if e.read_priority == priority]
            weighted = [e for e in group if e.read_weight > 0]
            while weighted:
                pick = rng.choices(range(len(weighted)), weights=[e.read_weight for e in weighted])[0]
                ordered.append(weighted.pop(pick))
            zero = [e for e in group if e.read_weight <= 0]
            rng.shuffle(zero)
            ordered.extend(zero)
    return ordered
