"""Inside a kind node, for the faults that act through it: find the pod's tikv container and its process
(crictl), and the small shell scripts that stop, continue or cut it off.

Every command runs in the node container through Docker's exec, with the node's own tools (crictl,
kill, nsenter, iptables); the node image has no Python. A script's arguments are passed as argv, never
spliced into its text.
"""

from __future__ import annotations

import re

from chaosdemo.api.errors import FaultUnavailable
from chaosdemo.api.models import TargetStatus
from chaosdemo.clients.docker import DockerClient

__all__ = ["CHAIN", "PARTITION", "PAUSE", "RESUME", "UNDO_PARTITION", "run", "tikv_container", "tikv_pid"]

CHAIN = "CHAOSDEMO"  # the iptables chain of a partition, in the pod's own network namespace

# Every process of the container: its cgroup's members (cgroup v2), else the one process.
_PROCS = ('cg=$(sed -n "s/^0::\\(.*\\)$/\\1/p" /proc/"$1"/cgroup); '
          'procs=$(cat "/sys/fs/cgroup$cg/cgroup.procs" 2>/dev/null || echo "$1"); ')
PAUSE = _PROCS + ('state=$(sed "s/.*) //" /proc/"$1"/stat | cut -d" " -f1); '
                  'if [ "$state" = T ]; then echo already; exit 0; fi; kill -STOP $procs && echo paused $procs')
RESUME = _PROCS + 'kill -CONT $procs && echo resumed $procs'
# Drop to and from each address; the jumps go in last, so a half-built chain is never in force, and a
# chain already hooked in means the partition is in place (an operator restarted mid-injection).
PARTITION = (f'pid=$1; shift; ns() {{ nsenter -t "$pid" -n "$@"; }}; '
             f'if ns iptables -C OUTPUT -j {CHAIN} 2>/dev/null; then echo already; exit 0; fi; '
             f'ns iptables -N {CHAIN} 2>/dev/null || ns iptables -F {CHAIN}; '
             f'for ip in "$@"; do ns iptables -A {CHAIN} -d "$ip" -j DROP && ns iptables -A {CHAIN} -s "$ip" -j DROP '
             f'|| exit 1; done; ns iptables -I INPUT -j {CHAIN} && ns iptables -I OUTPUT -j {CHAIN} && echo cut off')
UNDO_PARTITION = (f'pid=$1; ns() {{ nsenter -t "$pid" -n "$@"; }}; '
        f'while ns iptables -D OUTPUT -j {CHAIN} 2>/dev/null; do :; done; '
        f'while ns iptables -D INPUT -j {CHAIN} 2>/dev/null; do :; done; '
        f'ns iptables -F {CHAIN} 2>/dev/null; ns iptables -X {CHAIN} 2>/dev/null; echo undone')

_ID = re.compile(r"^[0-9a-f]{12,64}$")


async def run(docker: DockerClient, node: str, script: str, *args: str) -> tuple[int, str]:
    return await docker.exec(node, ["sh", "-c", script, "chaosdemo", *args])


async def tikv_container(docker: DockerClient, node: str, namespace: str, target: TargetStatus) -> str:
    """The id of the target pod's running tikv container in ``node`` (the pod's uid included), or ''."""
    code, out = await docker.exec(node, [
        "crictl", "ps", "--quiet", "--state", "running", "--name", "^tikv$",
        "--label", f"io.kubernetes.pod.name={target.pod}",
        "--label", f"io.kubernetes.pod.namespace={namespace}",
        "--label", f"io.kubernetes.pod.uid={target.pod_uid}",
    ])
    if code != 0:
        raise FaultUnavailable(f"crictl ps failed in {node}: {out.strip()[:200]}", reason="CrictlFailed")
    ids = [i for i in out.split() if _ID.match(i)]
    return ids[0] if ids else ""


async def tikv_pid(docker: DockerClient, node: str, namespace: str, target: TargetStatus) -> str:
    """The node's PID of the target's tikv process, or '' when it has no running container."""
    cid = await tikv_container(docker, node, namespace, target)
    if not cid:
        return ""
    code, out = await docker.exec(node, ["crictl", "inspect", "-o", "go-template", "--template", "{{.info.pid}}",
                                         cid])
    pid = out.strip()
    if code != 0 or not pid.isdigit() or pid == "0":
        raise FaultUnavailable(f"crictl inspect gave no PID for {cid[:13]} in {node}: {out.strip()[:200]}",
                               reason="CrictlFailed")
    return pid
