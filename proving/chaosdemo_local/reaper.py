"""Nothing the local tier starts outlives it.

Three layers, because no single one covers every way out:

- ``die_with_parent``: every process the tier spawns asks the kernel to SIGKILL
  it when its parent dies (Linux ``PR_SET_PDEATHSIG``), so a parent that is
  SIGKILLed takes its control plane, simulators and operators with it;
- ``stop_on_signals``: SIGTERM and SIGHUP end a command like Ctrl-C does (and
  SIGINT works even when a shell started it in the background with SIGINT
  ignored), so the normal teardown runs;
- ``reap_leftovers``: what escapes both (a dockerd's container shims and the
  node containers' processes, which are not our children) is found at the next
  start, by marks only the tier's processes carry (``MARK`` in the environment,
  ``DOCKERD_MARK`` in a shim's arguments), among processes whose parent or
  dockerd is gone, and killed.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "DOCKERD_MARK",
    "LOCAL_DATA_ROOT",
    "MARK",
    "die_with_parent",
    "marked_env",
    "processes",
    "reap_leftovers",
    "remove_run_dir",
    "stale_roots",
    "stop_on_signals",
    "unmount_under",
]

DOCKERD_MARK = "/cd-dockerd-"  # in the exec root of every dockerd the tier starts, and in its shims' arguments
LOCAL_DATA_ROOT = "/dockerd/data"  # where the local tier's dockerd keeps its data, below the tier's workdir
MARK = "CHAOSDEMO_LOCAL_TIER"  # in the environment of every process the tier spawns
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """A ``preexec_fn``: the child is SIGKILLed when the process that spawned it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def marked_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a process the tier spawns: the caller's, plus the tier's mark."""
    return {**(os.environ if env is None else env), MARK: str(os.getpid())}


def stop_on_signals() -> None:
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def processes() -> dict[int, tuple[int, list[str], bytes]]:
    """pid -> (parent pid, argv, environment) of every process we can read (a zombie has no argv)."""
    out = {}
    for d in Path("/proc").glob("[0-9]*"):
        try:
            argv = [a.decode(errors="replace") for a in (d / "cmdline").read_bytes().split(b"\0") if a]
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (d / "environ").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        out[int(d.name)] = (ppid, argv, environ)
    return out


def _dockerd_root(argv: list[str]) -> str:
    """The /tmp/cd-dockerd-XXXX directory a dockerd, its containerd or one of its shims names, or ''."""
    m = re.search(r"[^\s:=]*" + re.escape(DOCKERD_MARK) + r"[^/\s]+", " ".join(argv))
    return re.sub(r"^/+", "/", m.group(0)) if m else ""


def unmount_under(path: Path, *, itself: bool = False) -> None:
    """Lazily unmount every mount below ``path`` (and ``path`` itself if asked), innermost first."""
    root = str(path.resolve())
    for line in Path("/proc/mounts").read_text().splitlines()[::-1]:
        target = line.split()[1]
        if target.startswith(root + "/") or (itself and target == root):
            subprocess.run(["umount", "-l", target], capture_output=True, check=False)


def remove_run_dir(path: Path) -> None:
    """Remove a dockerd's run directory, unmounting what it left there (its netns bind mount) first."""
    unmount_under(path)
    shutil.rmtree(path, ignore_errors=True)


def _data_root(argv: list[str]) -> str:
    return next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--data-root"), "")


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _live_dockerds(procs: dict[int, tuple[int, list[str], bytes]]) -> list[list[str]]:
    """The argv of every dockerd whose run is still there (its parent is alive)."""
    return [argv for ppid, argv, _ in procs.values() if argv and argv[0].endswith("dockerd")  and ppid not in (0, 1)]


def stale_roots(procs: dict[int, tuple[int, list[str], bytes]], me: int) -> list[int]:
    """The topmost leftovers in a process table (pid -> (parent pid, argv, environment)).

    A dockerd of the tier counts as running only while the run that started it does: its parent is
    alive. One whose parent is gone is a leftover like any other (the kernel's SIGKILL for it may not
    have landed yet: a busy machine showed a SIGKILLed run's dockerd still alive after its API server
    had died, and its container shims were spared as a live tier's), and so are its shims.
    """
    live_roots = {_dockerd_root(argv) for argv in _live_dockerds(procs)}
    roots = []
    for pid, (ppid, argv, environ) in procs.items():
        if pid == me or ppid not in (0, 1) or not argv:
            continue
        root = _dockerd_root(argv)
        # A dockerd's containerd and shims live on after their parent by design (and inherit the mark):
        # they are leftovers only when that dockerd's run is gone.
        stale = root not in live_roots if root else MARK.encode() + b"=" in environ
        if stale:
            roots.append(pid)
    return roots


def reap_leftovers(log: Callable[[str], None] = print) -> list[int]:
    """Kill what an earlier, killed run of the tier left, and everything below it.

    Two kinds: processes the tier spawned (they carry ``MARK`` in their environment)
    whose parent is gone; and the dockerds of the tier whose run is gone, with their
    containerd and container shims. A tier that is still running keeps its own: its
    children still have their parent, and so does its dockerd. What is killed is
    gone (or a zombie) before the mounts and run directories it held are removed.
    """
    procs = processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    roots = stale_roots(procs, os.getpid())
    doomed: list[int] = []
    stack = list(roots)
    while stack:
        pid = stack.pop()
        doomed.append(pid)
        stack.extend(children.get(pid, []))
    for pid in roots:
        log(f"removing what an earlier run left: pid {pid} {' '.join(procs[pid][1])[:120]}")
    for pid in reversed(doomed):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in doomed):
        time.sleep(0.1)
    live = _live_dockerds(procs)
    live_roots, live_data = {_dockerd_root(a) for a in live}, {_data_root(a) for a in live}
    # A dockerd stopped with --live-restore, or killed, leaves its data root bind-mounted on itself (and
    # its containers' layers below it): a directory nobody can delete until it is unmounted.
    for line in Path("/proc/mounts").read_text().splitlines():
        target = line.split()[1]
        if target.endswith(LOCAL_DATA_ROOT) and target not in live_data:
            log(f"unmounting what an earlier run's Docker engine left: {target}")
            unmount_under(Path(target), itself=True)
    for run_dir in Path(tempfile.gettempdir()).glob(DOCKERD_MARK.strip("/") + "*"):
        # Not one a dockerd is just starting in: only a minute after it was made.
        if str(run_dir) not in live_roots and time.time() - run_dir.stat().st_mtime > 60:
            remove_run_dir(run_dir)
    return doomed
