"""Ports picked for test stacks stay theirs: never from the range the kernel hands out on its own
(bind to port 0, the source port of every outgoing connection), never twice, and never to another
process on this machine while this one lives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from imgtag_dev.processes import free_port, port_is_free


def _ephemeral() -> range:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return range(int(low), int(high) + 1)


def test_free_ports_are_free_outside_the_kernel_ephemeral_range_and_never_repeat() -> None:
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert [p for p in ports if p in _ephemeral()] == []
    assert all(port_is_free(p) for p in ports)


def test_another_process_never_gets_a_port_this_process_holds() -> None:
    mine = {free_port() for _ in range(300)}
    child = (
        "import json; from imgtag_dev.processes import free_port; print(json.dumps([free_port() for _ in range(300)]))"
    )
    theirs = set(json.loads(subprocess.run([sys.executable, "-c", child], capture_output=True, check=True).stdout))
    assert len(theirs) == 300
    assert mine.isdisjoint(theirs)
