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

__all__ = ["CONTAINERS", "PARTITION", "PAUSE", "RESUME", "UNDO_PARTITION", "chain_of", "run", "sandbox_pid",
           "target_container", "target_pid"]

_CHAIN_CHARS = re.compile(r"[^a-z0-9]")


def chain_of(target: TargetStatus) -> str:
    """The iptables chain of one demo's partition, named by its pod's uid (28 characters at most): two demos
    never share a chain, and an undo removes only its own."""
    return "CHAOSDEMO-" + _CHAIN_CHARS.sub("", target.pod_uid.lower())[:18]


# Every process of the container: the members of its cgroup, read from the line of /proc/PID/cgroup that names
# the container (cgroup v2's "0::", or v1's pids hierarchy; a host on v1 showed that the v2 line alone left a
# container's other processes running), else the one process. $1 is the PID crictl gave for container $2 a
# moment before: a PID can be reused in between, so it must still be in that container's cgroup, or nothing is
# signalled; and only a cgroup whose path names the container is ever read, never a parent of it.
_PROCS = ('grep -q -e "$2" /proc/"$1"/cgroup 2>/dev/null || { echo "process $1 no longer belongs to container $2"; '
          'exit 3; }; cg=$(grep -e "$2" /proc/"$1"/cgroup | sed -n -e "s/^0::\\(.*\\)$/\\1/p" '
          '-e "s/^[0-9]*:pids:\\(.*\\)$/pids\\1/p" | head -1); '
          'procs=$(cat "/sys/fs/cgroup/$cg/cgroup.procs" 2>/dev/null || echo "$1"); ')
PAUSE = _PROCS + ('state=$(sed "s/.*) //" /proc/"$1"/stat | cut -d" " -f1); '
                  'if [ "$state" = T ]; then echo already; exit 0; fi; kill -STOP $procs && echo paused $procs')
# Resumed only when seen running again: the ledger entry is dropped after that, never before.
RESUME = _PROCS + ('kill -CONT $procs || exit 1; state=$(sed "s/.*) //" /proc/"$1"/stat | cut -d" " -f1); '
                   'if [ "$state" = T ]; then echo "process $1 is still stopped"; exit 5; fi; echo resumed $procs')
# In the pod's network namespace, entered through its sandbox (which outlives a restarting container): $1 the
# sandbox's PID, $2 the chain. Drop to and from each address; the jumps go in last, so a half-built chain is
# never in force, and a chain already hooked in means the partition is in place (an operator restarted
# mid-injection). -w waits for the xtables lock instead of failing beside kube-proxy.
PARTITION = ('pid=$1; chain=$2; shift 2; ns() { nsenter -t "$pid" -n "$@"; }; '
             'if ns iptables -w -C OUTPUT -j "$chain" 2>/dev/null; then echo already; exit 0; fi; '
             'ns iptables -w -N "$chain" 2>/dev/null || ns iptables -w -F "$chain"; '
             'for ip in "$@"; do ns iptables -w -A "$chain" -d "$ip" -j DROP '
             '&& ns iptables -w -A "$chain" -s "$ip" -j DROP || exit 1; done; '
             'ns iptables -w -I INPUT -j "$chain" && ns iptables -w -I OUTPUT -j "$chain" && echo cut off')
# The undo, then a look at what is left: the entry of the ledger is dropped only once no rule names the chain.
UNDO_PARTITION = ('pid=$1; chain=$2; ns() { nsenter -t "$pid" -n "$@"; }; '
                  'while ns iptables -w -D OUTPUT -j "$chain" 2>/dev/null; do :; done; '
                  'while ns iptables -w -D INPUT -j "$chain" 2>/dev/null; do :; done; '
                  'ns iptables -w -F "$chain" 2>/dev/null; ns iptables -w -X "$chain" 2>/dev/null; '
                  'if ns iptables -w -S | grep -q -e "$chain"; then echo "left: $(ns iptables -w -S | grep -e '
                  '"$chain" | head -3)"; exit 4; fi; echo undone')

_ID = re.compile(r"^[0-9a-f]{12,64}$")
# The container tidb-operator names in each component's pod: the one a fault on that component hits.
CONTAINERS = {"tikv": "tikv", "pd": "pd"}


async def run(docker: DockerClient, node: str, script: str, *args: str) -> tuple[int, str]:
    return await docker.exec(node, ["sh", "-c", script, "chaosdemo", *args])


async def target_container(docker: DockerClient, node: str, namespace: str, target: TargetStatus) -> str:
    """The id of the target pod's running container in ``node`` (tikv, or pd for a PD member; the pod's uid
    included), or ''."""
    name = CONTAINERS[target.component]
    code, out = await docker.exec(node, [
        "crictl", "ps", "--quiet", "--state", "running", "--name", f"^{name}$",
        "--label", f"io.kubernetes.pod.name={target.pod}",
        "--label", f"io.kubernetes.pod.namespace={namespace}",
        "--label", f"io.kubernetes.pod.uid={target.pod_uid}",
    ])
    if code != 0:
        raise FaultUnavailable(f"crictl ps failed in {node}: {out.strip()[:200]}", reason="CrictlFailed")
    ids = [i for i in out.split() if _ID.match(i)]
    return ids[0] if ids else ""


async def target_pid(docker: DockerClient, node: str, namespace: str, target: TargetStatus) -> tuple[str, str]:
    """The node's PID of the target's process (tikv or pd) and its container's id, or ('', '') when it has no
    running container. Give both to a script: the PID is checked against the container there (``_PROCS``)."""
    cid = await target_container(docker, node, namespace, target)
    if not cid:
        return "", ""
    code, out = await docker.exec(node, ["crictl", "inspect", "-o", "go-template", "--template", "{{.info.pid}}",
                                         cid])
    pid = out.strip()
    if code != 0 or not pid.isdigit() or pid == "0":
        raise FaultUnavailable(f"crictl inspect gave no PID for {cid[:13]} in {node}: {out.strip()[:200]}",
                               reason="CrictlFailed")
    return pid, cid


async def sandbox_pid(docker: DockerClient, node: str, namespace: str, target: TargetStatus) -> str:
    """The node's PID of the target pod's sandbox (the process that holds its network namespace), or '' when
    the pod has no running sandbox there (gone, and its network namespace, with any rule in it, gone too)."""
    code, out = await docker.exec(node, [
        "crictl", "pods", "--quiet", "--state", "ready", "--name", f"^{re.escape(target.pod)}$",
        "--namespace", f"^{re.escape(namespace)}$", "--label", f"io.kubernetes.pod.uid={target.pod_uid}",
    ])
    if code != 0:
        raise FaultUnavailable(f"crictl pods failed in {node}: {out.strip()[:200]}", reason="CrictlFailed")
    ids = [i for i in out.split() if _ID.match(i)]
    if not ids:
        return ""
    code, out = await docker.exec(node, ["crictl", "inspectp", "-o", "go-template", "--template", "{{.info.pid}}",
                                         ids[0]])
    pid = out.strip()
    if code != 0 or not pid.isdigit():
        raise FaultUnavailable(f"crictl inspectp gave no PID for sandbox {ids[0][:13]} in {node}: "
                               f"{out.strip()[:200]}", reason="CrictlFailed")
    return "" if pid == "0" else pid
