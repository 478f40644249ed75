"""``make bench-kind``: who saw each fault first, on the kind tier, in the same runs.

A benchmark, not a test: it reports and fails only when a demo does not succeed. On a real kind cluster
built here (real kubelets, containerd and tidb-operator v1.6.6; PD, TiKV and TiDB STAND-INS heartbeating at
PD's real timing), it runs demos of each action, rotating the target over the TiKV pods, and reads beside
each demo, once a second and independently of the operator, what Kubernetes, PD and tidb-operator showed
(``chaosdemo_local.kind.observers``). Per action it reports the operator's detection and recovery, each
observer's first sight of the fault after the injection, and the ratio of their time to ours; an observer
that never showed the fault in a run is counted, not guessed.

The gray faults are the point: a paused or cut-off TiKV that Kubernetes never calls anything but Ready.
They are held ``--hold`` seconds (45 by default), long enough for PD to call the store Disconnected (20 s
after its last heartbeat) and for tidb-operator to copy that on its sync period.

``--actions`` also takes ``pd-leader``: a pod-kill of the pod of PD's leader (``target.role: pd-leader``,
resolved by the operator from PD's ``/members``), the drill SREs run most after a TiKV kill.

Writes ``bench/kind-results.json`` and the table between the bench-kind markers in docs/benchmark.md.

With ``--suite FILE`` (``make bench-kind SUITE=deploy/samples/suites/game-day.yaml``) it runs that
ChaosDemoSuite once instead, as a user would apply it (pauses, stopOnFailure and budgets its own), and
reports each step and the false-alarm rate of its no-fault controls, run live between the faults. One change
is made to it, said in the output: a node-kill step without a target is aimed at a TiKV whose node holds
neither PD's leader nor tidb-operator nor, when such a node is left, TiDB, as every test and bench here does
(a random choice already avoids a node whose loss would break PD's quorum, which the quorum guard refuses,
but not TiDB's: this cluster has one TiDB, and a node-kill that takes it down fails the canary's budget, as
it should).

With ``--record DIR`` the operator runs with ``settings.recordEvidence`` and each run's evidence bundle and
ground truth become a case of the diagnosis benchmark in DIR (``chaosdemo eval``): the demos above (run i of
every action hits the same pod, so pod-kill and container-kill of one pod form look-alike pairs), plus
``--controls`` dry runs of the healthy cluster (no fault) and ``--distractions`` pod-kill runs with a
planted Warning Event about the TiDB pod (an OOM kill that did not happen) in the evidence.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from chaosdemo.api.conditions import TERMINAL
from chaosdemo.api.models import HELD_ACTIONS
from chaosdemo.api.timestamps import parse_iso
from chaosdemo.run.casebook import CASE_MARK
from chaosdemo_local.cluster.tikv import OPEN_BUDGET, node_kill_target, tikv_pods
from chaosdemo_local.kind.env import KindEnv
from chaosdemo_local.kind.images import REPO
from chaosdemo_local.kind.observers import Observers, sights
from chaosdemo_local.kind.steps import TIDB_ADMIN_NS, TIDB_NS, Unsupported
from chaosdemo_local.reaper import stop_on_signals

__all__ = ["main", "summarize", "table"]

START, END = "<!-- bench-kind:start -->", "<!-- bench-kind:end -->"
OBSERVERS = ("kubernetes", "pd", "tidb-operator")


def say(msg: str) -> None:
    print(f"[bench-kind {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def fault_spec(action: str, hold: int) -> dict[str, Any]:
    if action in HELD_ACTIONS:
        return {"action": action, "durationSeconds": hold}
    if action == "node-kill":
        return {"action": action, "nodeDownSeconds": 70}
    return {"action": action}


# A drill named for its target's role: the fault it injects, and the target it asks for.
ROLE_DRILLS = {"pd-leader": ("pod-kill", {"role": "pd-leader"})}


def target_for(env: KindEnv, action: str, i: int) -> tuple[str, bool]:
    """The i-th run's target: the TiKV pods in turn; for node-kill, one whose node hosts neither PD's leader nor
    tidb-operator (their loss is another demo) nor, when one is left, TiDB. And whether TiDB shares its node."""
    if action == "node-kill":
        return node_kill_target(env, TIDB_NS, TIDB_ADMIN_NS)
    names = sorted(tikv_pods(env, TIDB_NS))
    return names[i % len(names)], False


def canary_for(action: str, with_tidb: bool) -> dict[str, Any]:
    """The canary's spec: no budget to break when TiDB dies with the killed node (every statement fails);
    4 s for a statement on healthy rows during a node-kill, which loads a 2-core machine (1.9 s seen)."""
    if with_tidb:
        return {"budget": OPEN_BUDGET}
    return {"budget": {"maxStatementSeconds": 4}} if action == "node-kill" else {}


DISTRACTION = {
    "apiVersion": "v1", "kind": "Event", "metadata": {"generateName": "bench-distraction-", "namespace": TIDB_NS},
    "involvedObject": {"kind": "Pod", "name": "basic-tidb-0", "namespace": TIDB_NS}, "type": "Warning",
    "reason": "OOMKilling", "source": {"component": "kubelet"}, "count": 1,
    "message": "Memory cgroup out of memory: Killed process 4242 (tidb-server) total-vm:8388608kB, anon-rss:4194304kB"}


def case_from_logs(env: KindEnv, demo: str) -> dict[str, Any] | None:
    """The case the operator logged for ``demo`` (namespace/name), from any of its pods' logs."""
    logs = env.kubectl("logs", "-n", "chaosdemo-system", "-l", "app.kubernetes.io/name=chaosdemo-operator",
                       "--tail=-1", "--max-log-requests=5", check=False).stdout
    for line in reversed(logs.splitlines()):
        if CASE_MARK in line:
            case: dict[str, Any] = json.loads(line.split(CASE_MARK, 1)[1])
            if case.get("demo") == demo:
                return case
    return None


def save_case(out: Path, case_id: str, case: dict[str, Any], note: str) -> None:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO)
    doc = {"id": case_id, "recorded": {"tier": "kind (real kubelets, containerd and tidb-operator v1.6.6; PD, "
                                               "TiKV and TiDB STAND-INS)", "by": "make bench-kind RECORD=...",
                                       "at": case["recordedAt"], "commit": commit.stdout.strip(), "note": note},
           "injected": case["injected"], "evidence": case["evidence"]}
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{case_id}.json").write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")


def one_run(env: KindEnv, action: str, i: int, hold: int, *, dry_run: bool = False,
            distraction: bool = False, window: int = 120) -> dict[str, Any]:
    env.wait_healthy(timeout=300)
    name = f"bench-{'control' if dry_run else action}-{'d' if distraction else ''}{i}"
    if action in ROLE_DRILLS:  # resolved by the operator from PD's live view
        (pod, with_tidb), (fault, target) = ("", False), ({"action": ROLE_DRILLS[action][0]}, ROLE_DRILLS[action][1])
    else:
        pod, with_tidb = target_for(env, action, i)
        fault, target = fault_spec(action, hold), {"pod": pod}
    doc = {"apiVersion": "chaosdemo.dev/v1alpha1", "kind": "ChaosDemo",
           "metadata": {"name": name, "namespace": TIDB_NS},
           "spec": {"cluster": {"name": "basic"}, "fault": fault, "target": target,
                    "dryRun": dry_run, "canary": canary_for(action, with_tidb),
                    "timeouts": {"detectionSeconds": window, "recoverySeconds": 600, "stabilitySeconds": 10}}}
    with Observers(env) as view:
        env.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
        if distraction:
            env.kubectl("create", "-f", "-", input=yaml.safe_dump(DISTRACTION))
        deadline = time.monotonic() + 900
        while (st := env.kubectl_json("get", "chaosdemo", name, "-n", TIDB_NS).get("status") or {}).get("phase") \
                not in TERMINAL:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} still {st.get('phase')} after 900 s: {st.get('message')}")
            time.sleep(0.5)
        env.wait_healthy(timeout=300)  # tidb-operator agreeing, so its end of the fault is read too
    env.kubectl("delete", "chaosdemo", name, "-n", TIDB_NS, "--wait=false")
    pod = pod or (st.get("target") or {}).get("pod", "")
    out: dict[str, Any] = {"name": name, "target": pod, "phase": st["phase"], "message": st.get("message"),
                           "resolution": round(view.resolution(), 2),
                           "detectedBy": st.get("detectedBy"), "ours": st.get("detectionSeconds"),
                           "recovered": st.get("recoverySeconds"),
                           "faultClass": (st.get("diagnosis") or {}).get("faultClass"),
                           "matches": (st.get("diagnosis") or {}).get("matchesInjectedFault"),
                           **clients(st), "tidbOnTheNode": with_tidb}
    if st.get("injectedAt") and st.get("target", {}).get("podUid"):
        injected = parse_iso(st["injectedAt"])
        for who, s in sights(view.rows, pod, st["target"]["podUid"], injected).items():
            out[who] = None if s.first is None else round(s.first - injected, 1)
            out[f"{who}Over"] = None if s.over is None else round(s.over - injected, 1)
            out[f"{who}Saw"] = s.what
    return out


def clients(st: dict[str, Any]) -> dict[str, Any]:
    """What the SQL canary's clients felt in one run: their first failure, the longest stretch with no
    statement served and when users were served again (seconds after the injection), and the failures."""
    impact = st.get("impact") or {}
    seen = next((o for o in st.get("observers") or [] if o.get("observer") == "tidb-clients"), {})
    return {"clientsFirst": seen.get("sawFaultSeconds"), "unavailable": impact.get("longestUnavailableSeconds"),
            "servedAgain": impact.get("servedAgainSeconds"), "clientsFailed": sum((impact.get("failures") or {})
                                                                                  .values()),
            "lowestShare": impact.get("lowestThroughputShare"), "bankHeld": impact.get("bankTotalHeld")}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the succeeded runs; per observer, the median of its time and of its time over ours."""
    ok = [r for r in runs if r["phase"] == "Succeeded" and r["ours"] is not None]
    res: dict[str, Any] = {"runs": len(runs), "succeeded": len(ok),
                           "detectedBy": sorted({r["detectedBy"] for r in ok}),
                           "diagnosed": sum(1 for r in ok if r["matches"])}
    if not ok:
        return res
    res["ours"] = statistics.median(r["ours"] for r in ok)
    res["oursMax"] = max(r["ours"] for r in ok)
    res["recovered"] = statistics.median(r["recovered"] for r in ok)
    res["resolution"] = max(r.get("resolution", 0.0) for r in ok)
    felt = [r for r in ok if r.get("bankHeld") is not None]  # the runs the canary measured
    if felt:
        first = [r["clientsFirst"] for r in felt if r.get("clientsFirst") is not None]
        res["clients"] = {"runs": len(felt), "failedIn": len(first),
                          "first": statistics.median(first) if first else None,
                          "unavailable": statistics.median(r.get("unavailable") or 0.0 for r in felt),
                          "servedAgain": max((r["servedAgain"] for r in felt if r.get("servedAgain") is not None),
                                             default=None),
                          "lowestShare": min(r.get("lowestShare") or 0.0 for r in felt),
                          "bankHeld": all(r["bankHeld"] for r in felt)}
    for who in OBSERVERS:
        saw = [r for r in ok if r.get(who) is not None]
        res[f"{who}Never"] = len(ok) - len(saw)
        if saw:
            res[who] = statistics.median(r[who] for r in saw)
            res[f"{who}Ratio"] = round(statistics.median(r[who] / max(r["ours"], 0.001) for r in saw), 1)
    return res


def controls_summary(runs: list[dict[str, Any]], window: int) -> dict[str, Any]:
    """Live no-fault controls (action none) run between the faults: how many raised a false alarm, and what."""
    alarms = [r for r in runs if r.get("detectedBy")]  # a control records a detection only as a false alarm
    other = [r for r in runs if r["phase"] != "Succeeded" and r not in alarms]
    return {"runs": len(runs), "window": window, "falseAlarms": len(alarms), "notRun": len(other),
            "rate": round(len(alarms) / len(runs), 3) if runs else None,
            "seen": sorted({str(r.get("detectedBy")) for r in alarms})}


def controls_line(c: dict[str, Any] | None) -> list[str]:
    if not c or not c.get("runs"):
        return []
    seen = f" ({', '.join(c['seen'])})" if c["seen"] else ""
    refused = f"; {c['notRun']} did not run to their end" if c["notRun"] else ""
    return ["", f"Live no-fault controls (`fault.action: none`, a {c['window']} s window each), one after each "
            f"fault once the cluster was healthy again: **{c['falseAlarms']} false alarm(s) in {c['runs']}**"
            f"{seen}{refused}. A control injects nothing and fails when any invariant breaks in its window."]


def _cell(s: dict[str, Any], who: str) -> str:
    never = s.get(f"{who}Never", 0)
    if who not in s:
        return f"never ({never} of {s['succeeded']})"
    note = f", never in {never}" if never else ""
    return f"{s[who]:.1f} s ({s[f'{who}Ratio']}x{note})"


def table(results: dict[str, Any]) -> str:
    lines = [f"Measured by `make bench-kind` on {results['date']} ({results['machine']}), {results['runs']} runs per "
             f"action, targets in turn; gray faults held {results['hold']} s. Kind tier: real kubelets, containerd "
             "and tidb-operator v1.6.6; PD, TiKV and TiDB STAND-INS at PD's real timing (a heartbeat every 10 s, "
             "Disconnected after 20 s without one). Each observer's time is its first read (from outside the "
             "operator, a read begun every second) that showed the fault after the injection, so it is late by at "
             "most the longest read (last column). `bench/kind-results.json` has every run.", "",
             "| fault | ours: median (max) | detected by | Kubernetes | PD | tidb-operator | recovered (median) "
             "| diagnosis right | observers late by at most |", "|" + " --- |" * 9]
    for action, s in results["actions"].items():
        if not s.get("succeeded"):
            lines.append(f"| {action} | no run succeeded | | | | | | | |")
            continue
        lines.append(f"| {action} | {s['ours']:.2f} s ({s['oursMax']:.2f}) | {', '.join(s['detectedBy'])} | "
                     + " | ".join(_cell(s, w) for w in OBSERVERS)
                     + f" | {s['recovered']:.1f} s | {s['diagnosed']} of {s['succeeded']} | "
                     + (f"{s['resolution']:.1f} s |" if s.get("resolution") is not None else "not measured |"))
    lines += ["", "An observer's cell: its median time to show the fault, and the median of its time over ours "
              "(how many times longer it took); \"never\" counts the runs in which it never showed it.", "",
              *clients_table(results), *controls_line(results.get("controls")), *suite_lines(results.get("suite"))]
    return "\n".join(lines)


def clients_table(results: dict[str, Any]) -> list[str]:
    """What TiDB's clients felt, from the SQL canary of the same runs (the data path is a STAND-IN on real etcd
    raft groups, so these show the method, not TiDB's own timing)."""
    lines = ["What TiDB's clients saw in the same runs (the SQL canary at 20 statements a second through the TiDB "
             "STAND-IN onto etcd raft groups in the TiKV STAND-INs, election timeout 10 s as TiKV's): the first "
             "failed or timed-out statement after the injection, the longest stretch in which no statement "
             "succeeded, when users were served again (the latest run; empty when they never stopped being "
             "served), the lowest throughput against the baseline, and whether the bank's total held.", "",
             "| fault | clients' first failure (median) | failed in | longest unavailable (median) "
             "| served again (latest) | lowest throughput | bank total |", "|" + " --- |" * 7]
    for action, s in results["actions"].items():
        c = s.get("clients")
        if not c:
            lines.append(f"| {action} | not measured | | | | | |")
            continue
        first = "never" if c["first"] is None else f"{c['first']:.1f} s"
        served = "not needed" if c["servedAgain"] is None else f"{c['servedAgain']:.0f} s"
        lines.append(f"| {action} | {first} | {c['failedIn']} of {c['runs']} | {c['unavailable']:.1f} s | {served} "
                     f"| {c['lowestShare']:.0%} | {'held' if c['bankHeld'] else 'CHANGED'} |")
    return lines


def write(results: dict[str, Any], out: Path, doc: Path) -> None:
    """Write the results, keeping from an earlier ``out`` the actions this run did not measure."""
    if out.exists():
        before = json.loads(out.read_text())
        for key in ("actions", "samples"):
            results[key] = {**{a: v for a, v in (before.get(key) or {}).items() if a not in results[key]},
                            **results[key]}
        results.setdefault("earlier", before.get("date"))
        if "suite" not in results and before.get("suite"):
            results["suite"] = before["suite"]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    text = doc.read_text()
    block = START + "\n" + table(results) + "\n" + END
    if START in text and END in text:
        head, rest = text.split(START, 1)
        doc.write_text(head + block + rest.split(END, 1)[1])
    else:
        doc.write_text(text.rstrip() + "\n\n## On the kind tier\n\n" + block + "\n")


def record(env: KindEnv, out: Path, run: dict[str, Any], case_id: str, note: str) -> None:
    case = case_from_logs(env, f"{TIDB_NS}/{run['name']}")
    if case is None:
        say(f"no evidence case in the operator's logs for {run['name']}: not recorded")
        return
    save_case(out, case_id, case, note)


def extras(env: KindEnv, args: argparse.Namespace, results: dict[str, Any]) -> None:
    """The corpus's controls: healthy dry runs, and pod-kills with a planted distraction."""
    runs = results["samples"]["controls"] = []
    for i in range(args.controls):
        r = one_run(env, "pod-delete", i, args.hold, dry_run=True)
        runs.append(r)
        record(env, args.record, r, f"control-healthy-{i}", "no fault: a dry run's preflight of the healthy cluster")
    for i in range(args.distractions):
        r = one_run(env, "pod-kill", i, args.hold, distraction=True)
        runs.append(r)
        record(env, args.record, r, f"distraction-pod-kill-{i}",
               f"pod-kill of {r['target']}, with a planted Warning Event (OOMKilling) about basic-tidb-0 that "
               "did not happen")
    say(f"recorded {len(list(args.record.glob('*.json')))} cases in {args.record}")


def run_actions(env: KindEnv, args: argparse.Namespace, actions: list[str], results: dict[str, Any]) -> int:
    """Each action's runs, a live no-fault control after each (up to ``--live-controls``); how many failed."""
    failed = 0
    controls: list[dict[str, Any]] = []
    for action in actions:
        samples = results["samples"][action] = []
        for i in range(args.runs):
            r = one_run(env, action, i, args.hold)
            samples.append(r)
            if args.record:
                record(env, args.record, r, f"{action}-{i}", f"{action} of {r['target']}")
            failed += r["phase"] != "Succeeded"
            say(f"{action} {i + 1}/{args.runs} on {r['target']}: {r['phase']}, ours {r['ours']}s "
                f"({r['detectedBy']}), Kubernetes {r.get('kubernetes')}, PD {r.get('pd')}, "
                f"tidb-operator {r.get('tidb-operator')}, recovered {r['recovered']}s")
            if len(controls) < args.live_controls:
                c = one_run(env, "none", len(controls), args.hold, window=args.control_window)
                controls.append(c)
                say(f"live control {len(controls)}/{args.live_controls}: {c['phase']}"
                    + (f", FALSE ALARM by {c['detectedBy']}" if c.get("detectedBy") else ""))
        results["actions"][action] = summarize(samples)
    if controls:
        results["samples"]["live-controls"] = controls
        results["controls"] = controls_summary(controls, args.control_window)
    return failed


def suite_doc(env: KindEnv, path: Path) -> tuple[dict[str, Any], list[str]]:
    """The suite of ``path``, in the TidbCluster's namespace, with its node-kill steps aimed (said in the list)."""
    doc = yaml.safe_load(path.read_text())
    doc["metadata"]["namespace"] = TIDB_NS
    changed = []
    for step in doc["spec"]["steps"]:
        if (step.get("fault") or {}).get("action") == "node-kill" and not (step.get("target") or {}).get("pod"):
            pod, with_tidb = node_kill_target(env, TIDB_NS, TIDB_ADMIN_NS)
            step["target"] = {"pod": pod}
            step["canary"] = {**canary_for("node-kill", with_tidb), **(step.get("canary") or {})}
            changed.append(f"step {step['name']}: aimed at {pod} (its node holds neither PD's leader nor tidb-operator"
                           + (", but TiDB: no canary budget" if with_tidb else "") + ")")
    return doc, changed


def run_suite(env: KindEnv, path: Path, results: dict[str, Any]) -> int:
    """The suite of ``path`` once, its steps' moves said as they come; 1 unless its run Succeeded."""
    env.wait_healthy(timeout=300)
    doc, changed = suite_doc(env, path)
    name = doc["metadata"]["name"]
    for line in changed:
        say(line)
    env.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
    seen: dict[str, str] = {}
    deadline = time.monotonic() + 3600
    while not (st := env.kubectl_json("get", "chaosdemosuite", name, "-n", TIDB_NS).get("status") or {}).get(
            "verdict"):
        for step in st.get("steps") or []:
            if seen.get(step["name"]) != step.get("phase"):
                seen[step["name"]] = step.get("phase", "")
                say(f"step {step['name']} ({step.get('action')}): {step.get('phase')} {step.get('message', '')}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"suite {name} still {st.get('phase')} after an hour: {st.get('message')}")
        time.sleep(2)
    say(f"suite {name}: {st['message']}")
    steps = [{k: s.get(k) for k in ("name", "action", "phase", "reason", "detectionSeconds", "recoverySeconds",
                                    "diagnosisMatches", "budgetHeld", "falseAlarm")} for s in st["steps"]]
    controls = [s for s in steps if s["action"] == "none"]
    results["suite"] = {"file": str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path),
                        "date": results["date"], "verdict": st["verdict"], "totals": st["totals"], "steps": steps,
                        "changed": changed, "controls": len(controls),
                        "falseAlarms": sum(bool(s["falseAlarm"]) for s in controls)}
    env.kubectl("delete", "chaosdemosuite", name, "-n", TIDB_NS, "--timeout=120s")
    return 0 if st["verdict"] == "Succeeded" else 1


def _yes(v: Any) -> str:
    return "" if v is None else "yes" if v is True else "no" if v is False else str(v)


def suite_lines(s: dict[str, Any] | None) -> list[str]:
    if not s:
        return []
    t = s["totals"]
    lines = ["", f"A game day as one object, `{s['file']}` run once by `make bench-kind SUITE={s['file']}` on "
             f"{s['date']}: **{s['verdict']}**, {t['passed']} passed, {t['failed']} failed, {t['skipped']} "
             f"skipped; its no-fault controls, run live between the faults: **{s['falseAlarms']} false alarm(s) "
             f"in {s['controls']}**." + (f" Changed from the file: {'; '.join(s['changed'])}." if s["changed"]
                                          else ""), "",
             "| step | action | phase | detected (s) | recovered (s) | diagnosis right | budget held | false alarm |",
             "|" + " --- |" * 8]
    for x in s["steps"]:
        why = f" {x['reason']}" if x.get("reason") and x["phase"] != "Succeeded" else ""
        lines.append(f"| {x['name']} | {x['action']} | {x['phase']}{why} | {_yes(x['detectionSeconds'])} | "
                     f"{_yes(x['recoverySeconds'])} | {_yes(x['diagnosisMatches'])} | {_yes(x['budgetHeld'])} | "
                     f"{'YES' if x['falseAlarm'] else ''} |")
    return lines


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="chaosdemo-local bench-kind", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "3")))
    p.add_argument("--actions", default=os.environ.get("BENCH_ACTIONS", "process-pause,network-partition"))
    p.add_argument("--hold", type=int, default=45, help="seconds a gray fault is held (durationSeconds)")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "kind-results.json")
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmark.md")
    p.add_argument("--record", type=Path, default=None, help="write each run's evidence as a diagnosis case here")
    p.add_argument("--controls", type=int, default=2, help="with --record: dry runs of the healthy cluster")
    p.add_argument("--distractions", type=int, default=2, help="with --record: pod-kills with a planted Event")
    p.add_argument("--live-controls", type=int, default=int(os.environ.get("BENCH_CONTROLS", "-1")),
                   help="no-fault controls (action none), one after each fault run up to this many (default: one "
                   "after every fault run); their false alarms are reported")
    p.add_argument("--control-window", type=int, default=60, help="seconds each live control watches")
    p.add_argument("--suite", type=Path, default=None,
                   help="run this ChaosDemoSuite once instead, and report its steps and its controls' false alarms")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    stop_on_signals()
    actions = [a for a in args.actions.split(",") if a]
    if args.live_controls < 0:
        args.live_controls = args.runs * len(actions)
    per_run = {"node-kill": 2.5, "process-pause": 1.0 + args.hold / 60, "network-partition": 1.0 + args.hold / 60}
    minutes = (6 + args.runs * sum(per_run.get(a, 0.7) for a in actions)
               + args.live_controls * (0.5 + args.control_window / 60))
    what = (f"{args.runs} demos of each of {', '.join(actions)}, {args.live_controls} live no-fault controls "
            "between them")
    if args.suite is not None:
        args.suite = args.suite if args.suite.is_absolute() else (Path.cwd() / args.suite).resolve()
        steps = yaml.safe_load(args.suite.read_text())["spec"]["steps"]
        minutes, what = 6 + len(steps) * 1.5, f"the suite {args.suite.name} once, {len(steps)} steps"
    say(f"this takes about {minutes:.0f} minutes on 2 cores with the kind tier built (`make kind-tier` first "
        f"builds it: about 25 minutes from empty caches): {what}")
    env = KindEnv(Path(tempfile.mkdtemp(prefix="chaosdemo-bench-kind-")),
                  name=os.environ.get("KIND_CLUSTER", "chaosdemo-bench"))
    if args.record:
        env.operator_values["settings.recordEvidence"] = "true"
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "runs": args.runs, "hold": args.hold,
                               "machine": f"{os.cpu_count()} cores, {platform.machine()}, "
                                          f"Python {platform.python_version()}", "actions": {}, "samples": {}}
    try:
        env.start()
        failed = run_suite(env, args.suite, results) if args.suite else run_actions(env, args, actions, results)
        if args.record:
            extras(env, args, results)
    except Unsupported as e:
        say(f"the kind tier cannot run on this machine: {e}")
        return 2
    finally:
        env.stop()
        shutil.rmtree(env.workdir, ignore_errors=True)
    write(results, args.out, args.doc)
    print(table(results))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
