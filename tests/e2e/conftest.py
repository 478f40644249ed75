"""The kind tier: a real kind cluster from kind-config.yaml, driven by pytest-kind.

Here (no registry) everything is built locally by ``chaosdemo_local.kind.env.KindEnv``:
kind, the node image, the TiDB STAND-IN pods, the operator's image and chart.
A machine that cannot run kind (no Docker engine, no privileged containers)
skips the suite with the reason printed, never a hang. The timing table of the
setup is printed at the end of the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosdemo_local.kind.env import KindEnv, Unsupported, timings_table
from chaosdemo_local.reaper import stop_on_signals

REPO = Path(__file__).resolve().parents[2]
_TIMINGS: list[tuple[str, float]] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    """SIGTERM and SIGHUP end the run like Ctrl-C does, so the cluster and our dockerd are torn down."""
    stop_on_signals()


@pytest.fixture(scope="session")
def kind_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KindEnv]:
    env = KindEnv(tmp_path_factory.mktemp("kind"), name=os.environ.get("KIND_CLUSTER", "chaosdemo-e2e"),
                  timings=_TIMINGS)
    try:
        env.start()
    except Unsupported as e:
        pytest.skip(f"the kind tier cannot run on this machine: {e}")
    _ENVS.append(env)
    try:
        yield env
    finally:
        _ENVS.clear()
        env.stop()


_ENVS: list[KindEnv] = []  # the session's kind tier while it runs, for the failure report below


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed kind test says why without a rerun: the operator's log and what the cluster holds."""
    report = yield
    if report.failed and _ENVS:
        env = _ENVS[0]
        for title, args in (
                ("the operator's log (last 150 lines)", ("logs", "-n", "chaosdemo-system", "--all-containers",
                                                         "--prefix", "--tail=150", "-l",
                                                         "app.kubernetes.io/name=chaosdemo-operator")),
                ("ChaosDemos", ("get", "chaosdemos", "-A", "-o", "wide")),
                ("pods", ("get", "pods", "-A", "-o", "wide")),
                ("nodes", ("get", "nodes", "-o", "wide"))):
            try:
                out = env.kubectl(*args, check=False)
                report.sections.append((title, (out.stdout + out.stderr)[-12000:]))
            except Exception as e:  # noqa: BLE001 - a report must not hide the failure it reports
                report.sections.append((title, f"could not be read: {e!r}"))
    return report  # type: ignore[no-any-return]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _TIMINGS:
        terminalreporter.write_sep("-", "kind tier timings")
        terminalreporter.write_line(timings_table(_TIMINGS))
