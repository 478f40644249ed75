"""The local control plane's processes: started each with its log, waited on, restarted, stopped in order.

Every process is marked for the reaper and dies with its parent (``reaper.py``): none outlives its run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from chaosdemo_local.reaper import die_with_parent, marked_env

__all__ = ["ControlPlaneError", "Supervisor"]


class ControlPlaneError(RuntimeError):
    pass


def reap(proc: subprocess.Popen[bytes], grace: float) -> None:
    """Wait for a process group already sent SIGTERM; SIGKILL it after ``grace`` seconds."""
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@dataclass
class Supervisor:
    logs: Path
    bin_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    argv: dict[str, tuple[str, ...]] = field(default_factory=dict)  # how each was started, for restart()

    def spawn(self, name: str, *args: str) -> None:
        self.argv[name] = args
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "ab") as log:  # the child keeps its own descriptor
            self.processes[name] = subprocess.Popen(
                [str(self.bin_dir / args[0]), *args[1:]], stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env=marked_env(), preexec_fn=die_with_parent,
            )

    def restart(self, name: str, down_seconds: float) -> None:
        """Stop one process, keep it down, start it with the same flags.

        SIGTERM first, as the kubelet stops a static pod; SIGKILL after 10 s (kube-apiserver keeps
        open watches until they end).
        """
        proc = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        reap(proc, grace=10)
        time.sleep(down_seconds)
        self.spawn(name, *self.argv[name])

    def wait(self, what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
        """Until ``check()`` holds; a process that exits meanwhile fails the wait with its log's tail."""
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while time.monotonic() < deadline:
            for pname, proc in self.processes.items():
                if proc.poll() is not None:
                    tail = (self.logs / f"{pname}.log").read_text(errors="replace")[-2000:]
                    raise ControlPlaneError(f"{pname} exited with {proc.returncode} while waiting for {what}:\n{tail}")
            try:
                if check():
                    return
            except Exception as e:  # noqa: BLE001 - retried until the deadline
                last = e
            time.sleep(0.2)
        raise ControlPlaneError(f"timed out after {timeout}s waiting for {what}: {last!r}")

    def stop(self, last: tuple[str, ...] = ()) -> None:
        """SIGTERM every process, those named in ``last`` after all others and in that order; reap each."""
        for stage in ([n for n in self.processes if n not in last], *([n] for n in last)):
            for pname in stage:
                proc = self.processes.get(pname)
                if proc is not None and proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGTERM)
            for pname in stage:
                if pname in self.processes:
                    reap(self.processes[pname], grace=10)
        self.processes.clear()
