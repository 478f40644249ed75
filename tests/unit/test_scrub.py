"""The scrubber is linear in its text, and cuts before it scrubs: nothing a tenant's PD or pods write can
stall the operator's one event loop (issue 30). Measured with a clock, on text built to make a backtracking
pattern quadratic: the scrubber before this fix took 4 to 5 s on 10,000 characters of three of these."""

import time

import pytest

from chaosdemo.core.scrub import scrub

N = 200_000
HOSTILE = {
    "a run of word characters": "a" * N,
    "credential names without a value": "tokenpassword" * (N // 13),
    "an authorization header of spaces": "authorization:" + " " * N,
    "JWT starts inside one run": "eyJ" * (N // 3),
    "PEM headers without a key": ("-----BEGIN " + "A" * 50) * (N // 61),
    "bearer and spaces": "bearer" + " " * N,
    "Anthropic key prefixes": "sk-ant" * (N // 6),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_200000_characters_of_hostile_text_are_scrubbed_in_well_under_a_second(kind: str) -> None:
    text = HOSTILE[kind]
    t0 = time.perf_counter()
    out = scrub(text, limit=len(text))  # no cut: the patterns themselves must be linear
    took = time.perf_counter() - t0
    assert took < 0.5, f"{kind}: {took:.2f}s"
    assert len(out) <= len(text)


def test_the_cut_comes_first_so_the_usual_limit_bounds_the_work() -> None:
    text = "x" * 5_000_000 + " password=hunter2"
    t0 = time.perf_counter()
    out = scrub(text)
    assert time.perf_counter() - t0 < 0.05
    assert len(out) == 300 and out.endswith("…") and "hunter2" not in out


@pytest.mark.parametrize(("text", "shown", "hidden"), [
    ("DB_PASSWORD=hunter2 and more", "DB_", "hunter2"),
    ("x" * 290 + " token=abcdef123", "x" * 10, "abcdef"),  # the cut leaves "token=ab": still redacted
    ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN" + "B" * 400, "", "MIIEvQ"),  # cut inside the key
    ("call with sk-ant-api03-secretvalue now", "call with", "secretvalue"),
    ("ids eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl end", "ids", "c2lnbmF0dXJl"),
])
def test_what_a_credential_leaves_after_the_cut_is_still_redacted(text: str, shown: str, hidden: str) -> None:
    out = scrub(text)
    assert shown in out and hidden not in out and len(out) <= 300, out


def test_pds_strings_are_bounded_where_they_are_read() -> None:
    from chaosdemo.core.snapshot import pd_members_from, stores_from_pd

    members = pd_members_from([{"name": "m" * 100_000, "health": True}] * 1000)
    assert len(members) == 16 and all(len(name) == 128 for name, _ in members)
    ok = "basic-tikv-0.basic-tikv-peer.tidb-cluster.svc:20160"
    long = "basic-tikv-1.basic-tikv-peer.tidb-cluster.svc." + "a" * 300 + ":20160"
    stores = stores_from_pd({"stores": [{"store": {"id": "1" * 99, "address": ok, "state_name": "Up" * 5000}},
                                        {"store": {"id": "2", "address": long}}]}, "basic", "tidb-cluster")
    assert [(len(s.id), s.address, len(s.state_name)) for s in stores] == [(20, ok, 40)]
