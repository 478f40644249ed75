"""Nothing the local tier starts outlives it: `chaosdemo-local up` stopped by a signal, or SIGKILLed.

Each test starts the real command in a session of its own, waits until the whole
tier is up (control plane, Docker nodes, simulated PD, operator), then ends it
the way a user or a CI runner would, and looks at every process that was
running under it, and every container shim of its dockerd.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chaosdemo_local.cluster.env import LocalEnv
from chaosdemo_local.reaper import DOCKERD_MARK, reap_leftovers

from .conftest import REPO

SOURCES = os.pathsep.join((str(REPO / "operator"), str(REPO / "proving")))  # the operator, the proving ground

pytestmark = [pytest.mark.local, pytest.mark.docker]


# pid -> its start time (in clock ticks since boot), for every process tree() has seen: with pid_max at
# 32768 and a busy test run beside it, a pid can be given to a new process before the check reads it.
BORN: dict[int, str] = {}


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state first), or [] if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def tree(root: int) -> set[int]:
    """``root`` and every process below it, plus the container shims (and their children) of its dockerds."""
    procs: dict[int, tuple[int, str]] = {}
    for d in Path("/proc").glob("[0-9]*"):
        try:
            fields = _stat(int(d.name))
            procs[int(d.name)] = (int(fields[1]),
                                  (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            BORN[int(d.name)] = fields[19]
        except (OSError, ValueError, IndexError):
            continue
    below, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        for child, (ppid, _) in procs.items():
            if ppid == pid and child not in below:
                below.add(child)
                frontier.append(child)
    roots = {arg.split(DOCKERD_MARK)[1].split("/")[0] for p in below for arg in procs.get(p, (0, ""))[1].split()
             if DOCKERD_MARK in arg}
    shims = {pid for pid, (_, cmd) in procs.items() if "containerd-shim" in cmd and any(r in cmd for r in roots)}
    frontier = list(shims)
    while frontier:
        pid = frontier.pop()
        below.add(pid)
        frontier.extend(c for c, (ppid, _) in procs.items() if ppid == pid and c not in below)
    return below


def dockerd_argvs(pids: set[int]) -> list[list[str]]:
    """The command lines of the dockerds among ``pids``."""
    out = []
    for pid in pids:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if argv[0].endswith("dockerd"):
            out.append(argv)
    return out


def run_dirs(pids: set[int]) -> set[Path]:
    """The run directories of the dockerds among ``pids``."""
    return {Path("/tmp") / ("cd-dockerd-" + a.split(DOCKERD_MARK)[1].split("/")[0])
            for argv in dockerd_argvs(pids) for a in argv if DOCKERD_MARK in a}


def data_roots(pids: set[int]) -> set[str]:
    """The data roots of the dockerds among ``pids``."""
    return {argv[argv.index("--data-root") + 1] for argv in dockerd_argvs(pids) if "--data-root" in argv}


def mounts_under(roots: set[str]) -> list[str]:
    targets = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    return [t for t in targets for r in roots if t == r or t.startswith(r + "/")]


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (not zombies), and still the process that was seen (same start time)."""
    out = set()
    for pid in pids:
        fields = _stat(pid)
        if len(fields) > 19 and fields[0] != "Z" and BORN.get(pid, fields[19]) == fields[19]:
            out.add(pid)
    return out


def named(pids: set[int]) -> list[str]:
    return [f"{pid} {cmdline(pid)[:100]}" for pid in sorted(pids)]


def start_up() -> tuple[subprocess.Popen[bytes], set[int]]:
    proc = subprocess.Popen([sys.executable, "-m", "chaosdemo_local.cli", "up", "--time-scale", "0.1"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": SOURCES})
    assert proc.stdout is not None
    seen, deadline = b"", time.monotonic() + 180
    while b"Ctrl-C stops everything" not in seen:
        assert proc.poll() is None and time.monotonic() < deadline, seen.decode(errors="replace")[-3000:]
        if select.select([proc.stdout], [], [], 1)[0]:
            seen += os.read(proc.stdout.fileno(), 65536)
    while True:  # the banner comes right after the operator's start: wait until it is in the tree
        started = tree(proc.pid)
        if any(" -m chaosdemo run" in cmdline(p) for p in started):
            break
        assert time.monotonic() < deadline, f"no operator under {proc.pid}"
        time.sleep(0.1)
    assert len(started) >= 8, f"expected the whole tier under {proc.pid}, found {len(started)} processes"
    return proc, started


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# The three signals a user or a CI runner ends a command with take one code path into the teardown:
# the next test shows it for each of them, the one after runs that teardown for a whole tier.
WATCHER = """
import sys, time
from chaosdemo_local.reaper import stop_on_signals
stop_on_signals()
try:
    print("ready", flush=True)
    time.sleep(60)
except KeyboardInterrupt as e:
    print("teardown after", repr(e), flush=True)
    sys.exit(0)
print("not interrupted", flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_sigterm_sighup_and_sigint_each_end_a_command_through_its_teardown(sig: signal.Signals) -> None:
    # SIGINT ignored, as a shell leaves it for a command it starts in the background.
    proc = subprocess.Popen([sys.executable, "-c", WATCHER], cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": SOURCES},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and out.startswith("teardown after KeyboardInterrupt"), out


def test_up_stopped_by_sigterm_stops_everything_it_started() -> None:
    sig = signal.SIGTERM
    proc, started = start_up()
    started_dirs, roots = run_dirs(started), data_roots(started)
    assert started_dirs and roots, "the tier's own dockerd is among what it started"
    proc.send_signal(sig)
    assert proc.wait(timeout=90) is not None
    assert proc.stdout is not None
    proc.stdout.close()
    deadline = time.monotonic() + 30
    while alive(started) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert alive(started) == set(), f"left running after {sig.name}: {named(alive(started))}"
    assert not [d for d in started_dirs if d.exists()], "the dockerd's run directory is gone"
    assert mounts_under(roots) == [], "the engine's data root is unmounted (live-restore leaves it mounted)"


def test_a_sigkilled_up_takes_its_children_along_and_the_next_start_removes_the_rest() -> None:
    proc, started = start_up()
    roots = data_roots(started)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.stdout is not None
    proc.stdout.close()
    # Its own children die with it (PR_SET_PDEATHSIG); what is not its child (container shims and
    # the node containers' processes) is what the next start finds and removes.
    deadline = time.monotonic() + 30
    while any("kube-apiserver" in cmdline(p) for p in alive(started)):
        assert time.monotonic() < deadline, "the control plane outlived the SIGKILLed command"
        time.sleep(0.1)
    reap_leftovers(log=print)
    # A process SIGKILLed by the reaper takes a moment to exit: while its memory is torn down it is neither
    # running its command (an empty cmdline) nor a zombie yet (seen in CI: "left running: ['3449 ']").
    deadline = time.monotonic() + 10
    while alive(started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive(started) == set(), f"left running: {named(alive(started))}"
    assert roots and mounts_under(roots) == [], "nothing of the killed engine stays mounted"


def test_the_next_start_leaves_a_tier_that_is_still_running_alone(local_env: LocalEnv) -> None:
    """Another run's live tier (here: this session's, with its dockerd and node containers) is not a leftover."""
    assert local_env.docker_host, local_env.docker_error
    ours = tree(os.getpid())
    assert any("containerd-shim" in Path(f"/proc/{p}/cmdline").read_text(errors="replace") for p in alive(ours))
    reaped = reap_leftovers(log=print)
    assert set(reaped) & ours == set()
    ok, why = local_env.healthy()
    assert ok, why
