"""Fixtures of the local tier: a real control plane (built from Go modules, kwok for the
kubelets), the SIMULATED tidb-operator objects and PD, the local Anthropic stand-in, and
the operator as a real process."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosdemo_local.cluster.env import LocalEnv
from chaosdemo_local.cluster.harness import Demos, Operator, SharedOperator, claude_control, start_fake_claude
from chaosdemo_local.cluster.leftovers import (
    Reader,
    TierState,
    describe,
    going_namespaces,
    read_tier,
    remove,
    wait_clean,
)
from chaosdemo_local.reaper import stop_on_signals

from .misbehaving_pd import MisbehavingPD

TIME_SCALE = 0.1


def pytest_sessionstart(session: pytest.Session) -> None:
    """SIGTERM and SIGHUP end the run like Ctrl-C does, and Ctrl-C works where a shell started the run in the
    background (SIGINT ignored): every way out runs the teardown, and the tier's checks, instead of dying."""
    stop_on_signals()


@pytest.fixture(scope="session")
def local_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnv]:
    env = LocalEnv(tmp_path_factory.mktemp("local-tier"), time_scale=TIME_SCALE)
    try:
        env.start()
        yield env
    finally:
        env.stop()


@pytest.fixture(scope="session")
def claude_server(local_env: LocalEnv) -> Iterator[str]:
    yield start_fake_claude(local_env)


@pytest.fixture
def fake_claude(claude_server: str) -> Iterator[str]:
    """The Anthropic stand-in for one test: what the test told it to do is undone after it."""
    yield claude_server
    claude_control(claude_server, mode="answer", answer=None, delay=0, reset=True)


@pytest.fixture(scope="session")
def pd_front(local_env: LocalEnv) -> Iterator[MisbehavingPD]:
    """The shared operator's way to PD: passes everything through, unless a test sets its ``mode``."""
    with MisbehavingPD(local_env.pd_url) as front:
        yield front


_SHARED: list[SharedOperator] = []  # the session's, once made: for tests that must run without it


@pytest.fixture(scope="session")
def shared_operator(local_env: LocalEnv, pd_front: MisbehavingPD) -> Iterator[SharedOperator]:
    shared = SharedOperator(local_env, pd_front.url)
    _SHARED.append(shared)
    yield shared
    shared.stop()
    _SHARED.clear()


@pytest.fixture(autouse=True)
def _no_operator_unless_asked(request: pytest.FixtureRequest) -> None:
    """A test that does not ask for an operator runs without one: a ChaosDemo it creates is not acted on."""
    if "operator" not in request.fixturenames:
        for shared in _SHARED:
            shared.stop()


def _shared_pids() -> set[int]:
    return {sh.proc.popen.pid for sh in _SHARED if sh.proc is not None and sh.proc.popen.poll() is None}


# Set while a test runs: what the tier looked like before it, and how long each operator log was then.
_BEFORE = pytest.StashKey[tuple[LocalEnv, TierState, dict[Path, int]]]()
LEFTOVER_DEADLINE = 60  # seconds: a finalizer handled, a namespace deleted, a cluster healthy again


def _operator_logs(env: LocalEnv) -> dict[Path, int]:
    return {log: log.stat().st_size for log in (env.workdir / "logs").glob("operator*.log")}


# Namespaces a test made that were being deleted when it ended: name -> (who made it, when it ended).
_GOING: dict[str, tuple[str, float]] = {}


def _namespaces_gone(state: TierState) -> list[str]:
    """The namespaces of earlier tests still there past the deadline, as lines (those gone are forgotten)."""
    for ns in [ns for ns in _GOING if ns not in state.namespaces]:
        del _GOING[ns]
    now = time.monotonic()
    return [f"namespace {ns}, made by {who}, still there {now - ended:.0f} s after it ended"
            for ns, (who, ended) in sorted(_GOING.items()) if now - ended > LEFTOVER_DEADLINE]


@pytest.fixture(scope="session")
def tier_reader(local_env: LocalEnv) -> Iterator[Reader]:
    reader = Reader(local_env)
    yield reader
    deadline = time.monotonic() + LEFTOVER_DEADLINE
    while _GOING and time.monotonic() < deadline:
        _namespaces_gone(read_tier(local_env, reader, health=False))
        time.sleep(0.25)
    reader.close()
    assert not _GOING, f"namespaces of the session's tests still there at its end: {sorted(_GOING)}"


def _check_leftovers(env: LocalEnv, reader: Reader, before: TierState, who: str) -> None:
    left, after = wait_clean(lambda: read_tier(env, reader), before, _shared_pids, LEFTOVER_DEADLINE)
    late = _namespaces_gone(after)
    for ns in going_namespaces(before, after):
        _GOING.setdefault(ns, (who, time.monotonic()))
    if left or late:
        remove(env, before, after, _shared_pids())
        pytest.fail(f"after {who}, the tier still holds, {LEFTOVER_DEADLINE} s after its teardown (now removed):"
                    "\n  " + "\n  ".join(left + late), pytrace=False)


@pytest.fixture(autouse=True)
def _leaves_the_tier_as_it_found_it(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test of the tier leaves it as it found it, or fails naming what is left (and it is removed).

    Autouse, so set up before the test's other fixtures and torn down after them: what their
    teardowns leave counts too.
    """
    if "local_env" not in request.fixturenames:
        yield
        return
    env: LocalEnv = request.getfixturevalue("local_env")
    reader: Reader = request.getfixturevalue("tier_reader")
    before = read_tier(env, reader)
    request.node.stash[_BEFORE] = (env, before, _operator_logs(env))
    yield
    _check_leftovers(env, reader, before, request.node.nodeid)


@pytest.fixture(scope="module", autouse=True)
def _module_leaves_the_tier_as_it_found_it(request: pytest.FixtureRequest) -> Iterator[None]:
    """The same for what a module's own fixtures share among its tests (namespaces, RBAC, an installed chart)."""
    mine = [item for item in request.session.items if item.module is request.module]
    if not any("local_env" in getattr(item, "fixturenames", ()) for item in mine):
        yield
        return
    env: LocalEnv = request.getfixturevalue("local_env")
    reader: Reader = request.getfixturevalue("tier_reader")
    before = read_tier(env, reader)
    yield
    _check_leftovers(env, reader, before, f"the fixtures of {request.module.__name__}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test of the tier says why without a rerun: its operators' log and what the tier holds."""
    report = yield
    if report.failed and _BEFORE in item.stash:
        env, _, logs = item.stash[_BEFORE]
        for log, size in sorted(_operator_logs(env).items()):
            if size > logs.get(log, 0):
                with open(log, "rb") as fh:
                    fh.seek(logs.get(log, 0))
                    lines = fh.read().decode(errors="replace").splitlines()
                report.sections.append((f"{log.stem} during the test (last {min(len(lines), 120)} lines)",
                                        "\n".join(lines[-120:])))
        try:
            report.sections.append(("the tier now", describe(read_tier(env))))
        except Exception as e:  # noqa: BLE001 - a report must not hide the failure it reports
            report.sections.append(("the tier now", f"could not be read: {e!r}"))
    return report  # type: ignore[no-any-return]


@pytest.fixture
def operator(local_env: LocalEnv, shared_operator: SharedOperator, pd_front: MisbehavingPD) -> Iterator[Operator]:
    pd_front.mode = "ok"
    local_env.wait_healthy(timeout=60)
    op = Operator(local_env, shared_operator)
    yield op
    op.stop_all()
    pd_front.mode = "ok"


@pytest.fixture
def demos(local_env: LocalEnv, request: pytest.FixtureRequest) -> Iterator[Demos]:
    ns = "t-" + request.node.name.lower().replace("_", "-")[:40].strip("-") + "-" + uuid.uuid4().hex[:4]
    ns = "".join(ch for ch in ns if ch.isalnum() or ch == "-").strip("-")
    local_env.kubectl("create", "namespace", ns)
    yield Demos(local_env, ns)
    # While the test's operator still runs (it removes its finalizer); whatever stays is named by the
    # tier check below, which fails the test.
    local_env.kubectl("delete", "chaosdemosuites,chaosdemos", "--all", "-n", ns, "--wait=true", "--timeout=60s",
                      check=False)
    local_env.kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture
def docker_host(local_env: LocalEnv) -> str:
    if not local_env.docker_host:
        pytest.skip(f"no Docker engine in the local tier: {local_env.docker_error}")
    return local_env.docker_host


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def helm() -> str:
    """helm, built from its Go module (cached)."""
    out = subprocess.run(["bash", str(REPO / "hack" / "build-helm.sh")], capture_output=True, text=True, check=False)
    path = out.stdout.strip().splitlines()[-1] if out.returncode == 0 and out.stdout.strip() else ""
    if not path or not Path(path).exists():
        pytest.skip(f"helm could not be built from the Go module proxy: {out.stderr.strip()[-300:]}")
    return path
