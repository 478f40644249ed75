"""Which processes the next start of a tier takes for leftovers, decided from a process table.

The table is written here; tests/local/test_teardown.py runs the same decision on the real one,
after SIGKILLing a whole tier.
"""

from __future__ import annotations

from chaosdemo_local.reaper import MARK, stale_roots

MARKED = f"{MARK}=4242\0PATH=/usr/bin".encode()


def dockerd(run: str) -> list[str]:
    return ["dockerd", "--exec-root", f"/tmp/cd-dockerd-{run}/exec", "--data-root", f"/w/{run}/dockerd/data"]


def shim(run: str) -> list[str]:
    return ["containerd-shim-runc-v2", "-namespace", "moby", "-address", f"/tmp/cd-dockerd-{run}/exec/c.sock"]


TABLE = {
    100: (50, ["python", "-m", "pytest"], b""),               # a run that is still there
    300: (100, dockerd("live"), MARKED),                        # its dockerd: parent alive
    301: (1, shim("live"), MARKED),                             # its shim: a shim's parent is always init
    200: (1, dockerd("gone"), MARKED),                          # a killed run's dockerd, its SIGKILL not landed yet
    201: (1, shim("gone"), MARKED),                             # ... and its shim
    400: (1, ["python", "-m", "chaosdemo", "run"], MARKED),     # a killed run's operator, orphaned
    401: (1, ["sshd"], b"PATH=/usr/bin"),                       # somebody else's orphan: not ours
    402: (200, ["containerd"], MARKED),                         # below a leftover: reached through it
}


def test_a_dockerd_whose_run_is_gone_is_a_leftover_with_its_shims_while_a_live_runs_are_kept() -> None:
    assert sorted(stale_roots(TABLE, me=100)) == [200, 201, 400]


def test_a_dockerd_with_its_run_still_there_keeps_its_shims() -> None:
    table = {**TABLE, 200: (100, dockerd("gone"), MARKED)}
    assert sorted(stale_roots(table, me=100)) == [400]
