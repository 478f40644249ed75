"""``make bench``: how fast the operator sees and proves, measured on the local tier.

A benchmark, not a test: it runs end to end and reports; nothing fails on a
slow machine. Everything runs at PD's and TiKV's real timing (time scale 1) on
the local tier (real control plane and Docker nodes; SIMULATED kubelets, PD
and TiKV stores). It measures:

- detection, side by side in the same runs: the operator against the seed's
  approach (a loop asking PD every 2 s for stores that are not Up), per fault
  action, with how many faults that loop never saw;
- ``kubectl apply`` to fault injected (preflight included), from the same runs;
- one operator with 1, 10 and 30 TidbClusters each running a demo at once:
  p95 detection and the operator's peak memory;
- a warm ``make demo``, from the command to Succeeded.

Writes ``bench/results.json`` and the table between the bench markers in docs/benchmark.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from chaosdemo.api.conditions import TERMINAL
from chaosdemo_local.bench.fleet import Fleet
from chaosdemo_local.cluster.control_plane import REPO
from chaosdemo_local.cluster.env import LocalEnv, Process
from chaosdemo_local.cluster.tikv import pod_away_from_pd
from chaosdemo_local.reaper import stop_on_signals

__all__ = ["main"]

SEED_POLL = 2.0
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def ts(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


# ------------------------------------------------------------------ the seed's approach

class SeedWatcher:
    """The seed demo's detection: every 2 s, ask PD for the stores and look for one that is not Up."""

    def __init__(self, pd_url: str) -> None:
        self.pd_url = pd_url
        self.first_seen: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        self._stop.wait(random.uniform(0, SEED_POLL))  # its polls fall anywhere relative to the fault
        while not self._stop.is_set():
            t = time.time()
            try:
                with urllib.request.urlopen(self.pd_url + "/pd/api/v1/stores", timeout=2) as resp:
                    stores = json.loads(resp.read())["stores"]
                if any(s["store"].get("state_name", "Up") != "Up" for s in stores) and self.first_seen is None:
                    self.first_seen = t
            except (OSError, ValueError, KeyError):
                pass
            self._stop.wait(max(0.0, SEED_POLL - (time.time() - t)))

    def __enter__(self) -> SeedWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# ------------------------------------------------------------------ one demo

def run_demo(env: LocalEnv, name: str, fault: dict[str, Any], target: str | None, timeout: float = 900,
             namespace: str = "bench") -> dict[str, Any]:
    spec: dict[str, Any] = {"cluster": {"name": env.tidb_name, "namespace": env.tidb_namespace}, "fault": fault,
                            "timeouts": {"detectionSeconds": 120, "recoverySeconds": 600, "stabilitySeconds": 5},
                            "diagnosis": {"enabled": False},
                            "canary": {"enabled": False}}  # what detection costs, not the clients (bench-kind has them)
    if target:
        spec["target"] = {"pod": target}
    doc = {"apiVersion": "chaosdemo.dev/v1alpha1", "kind": "ChaosDemo",
           "metadata": {"name": name, "namespace": namespace}, "spec": spec}
    applied = time.time()
    env.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        obj = env.kubectl_json("get", "chaosdemo", name, "-n", namespace)
        if (obj.get("status") or {}).get("phase") in TERMINAL:
            return {"applied": applied, "object": obj}
        time.sleep(0.5)
    raise TimeoutError(f"{name} did not end in {timeout}s")


# ------------------------------------------------------------------ the sections

def detection(env: LocalEnv, runs: int, actions: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for action in actions:
        samples = []
        for i in range(runs):
            env.wait_healthy(timeout=300)
            fault = {"action": action, **({"nodeDownSeconds": 30} if action == "node-kill" else {})}
            target = pod_away_from_pd(env, env.tidb_namespace, random.choice) if action == "node-kill" else None
            with SeedWatcher(env.pd_url) as seed:
                got = run_demo(env, f"{action}-{i}", fault, target)
            st = got["object"]["status"]
            injected = ts(st["injectedAt"]) if st.get("injectedAt") else None
            seen = seed.first_seen
            sample = {
                "phase": st["phase"], "operatorSeconds": st.get("detectionSeconds"), "detectedBy": st.get("detectedBy"),
                "seedSeconds": None if seen is None or injected is None else round(seen - injected, 3),
                "recoverySeconds": st.get("recoverySeconds"),
                "applyToInjected": None if injected is None else round(injected - got["applied"], 3),
                # creationTimestamp has whole seconds only: the operator's own startedAt (ms) splits the time.
                "applyToStarted": None if not st.get("startedAt") else round(ts(st["startedAt"]) - got["applied"], 3),
            }
            samples.append(sample)
            say(f"{action} {i + 1}/{runs}: {st['phase']}, operator {sample['operatorSeconds']}s "
                f"({sample['detectedBy']}), seed {sample['seedSeconds'] if seen else 'never saw it'}, "
                f"apply->injected {sample['applyToInjected']}s")
        out[action] = {"runs": samples, **summarize(samples)}
    return out


def summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [s for s in samples if s["phase"] == "Succeeded" and s["operatorSeconds"] is not None]
    op = [s["operatorSeconds"] for s in ok]
    seed = [s["seedSeconds"] for s in ok if s["seedSeconds"] is not None]
    res: dict[str, Any] = {"succeeded": len(ok), "seedMissed": sum(1 for s in ok if s["seedSeconds"] is None)}
    if op:
        res.update(operatorMedian=statistics.median(op), operatorP95=pct(op, 95))
    if seed:
        res.update(seedMedian=statistics.median(seed), seedP95=pct(seed, 95))
    if op and seed:
        res["medianRatio"] = round(res["seedMedian"] / max(res["operatorMedian"], 1e-3), 1)
    return res


def peak_memory(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) in MiB, from the kernel's own accounting."""
    text = Path(f"/proc/{pid}/status").read_text()
    def kb(key: str) -> float:
        m = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
        return int(m.group(1)) / 1024 if m else 0.0
    return kb("VmRSS"), kb("VmHWM")


def start_operator(env: LocalEnv, name: str, **extra: str) -> Process:
    """The operator as the chart runs it: INFO logs, without kopf's debug logging (``--verbose``)."""
    proc = env.start_operator(name=name, verbose=False, **extra)
    deadline = time.monotonic() + 60
    while "leading:" not in proc.output():
        if proc.popen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"operator did not start:\n{proc.output()[-2000:]}")
        time.sleep(0.2)
    return proc


def fleet(env: LocalEnv, sizes: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for size in sizes:
        f = Fleet(env, size, namespace=f"bench-fleet-{size}", prefix=f"f{size}")
        say(f"fleet of {size}: installing {size} TidbClusters and their simulated PD")
        f.start(timeout=600)
        proc = start_operator(env, f"operator-fleet-{size}", CHAOSDEMO_PD_URL_TEMPLATE=f.template)
        try:
            docs = f.demos(timeouts={"detectionSeconds": 120, "recoverySeconds": 600, "stabilitySeconds": 5})
            t0 = time.monotonic()
            env.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
            ends: dict[str, dict[str, Any]] = {}
            while len(ends) < size and time.monotonic() - t0 < 1200:
                items = env.kubectl_json("get", "chaosdemos", "-n", f.namespace)["items"]
                ends = {o["metadata"]["name"]: o["status"] for o in items
                        if (o.get("status") or {}).get("phase") in TERMINAL}
                time.sleep(1)
            took = time.monotonic() - t0
            _, peak = peak_memory(proc.popen.pid)
            assert env.cluster is not None
            split = detection_split(ends, env.cluster.operator_deletions(f.namespace))
        finally:
            f.stop()  # the operator still runs: its deletion handler lets the demos (and their namespace) go
            proc.stop()
        det = [st["detectionSeconds"] for st in ends.values() if st.get("detectionSeconds") is not None]
        out[str(size)] = {"clusters": size, "succeeded": sum(1 for st in ends.values() if st["phase"] == "Succeeded"),
                          "detectionP95": pct(det, 95) if det else None,
                          "detectionMedian": statistics.median(det) if det else None,
                          "operatorPeakMiB": round(peak, 1), "allEndedSeconds": round(took, 1), "split": split}
        say(f"fleet of {size}: {out[str(size)]}")
    return out


def detection_split(ends: dict[str, dict[str, Any]], deletions: list[dict[str, str]]) -> dict[str, Any]:
    """Where a fleet's detection time goes, from the API server's audit log of the operator's DELETEs
    (``deletions``, as ``LocalCluster.operator_deletions`` gives them).

    Detection runs from the moment the operator starts the injection to the watch event that shows the
    pod going. With many demos at once it splits into: until the DELETE reaches the API server (the
    operator's own queue), inside the API server, and from the API server's answer to the detection (the
    watch event's way back, through kopf, to the demo). Each part's median and p95 over the demos.
    """
    mine = {d["name"]: d for d in deletions if d["received"]}
    parts: dict[str, list[float]] = {"toApiServer": [], "inApiServer": [], "answerToDetection": []}
    for st in ends.values():
        d = mine.get((st.get("target") or {}).get("pod", ""))
        if d is None or not st.get("injectedAt") or not st.get("detectedAt"):
            continue
        received, done = ts(d["received"]), ts(d["at"])
        parts["toApiServer"].append(received - ts(st["injectedAt"]))
        parts["inApiServer"].append(done - received)
        parts["answerToDetection"].append(ts(st["detectedAt"]) - done)
    return {k: {"median": round(statistics.median(v), 3), "p95": round(pct(v, 95), 3), "n": len(v)}
            for k, v in parts.items() if v}


def warm_demo() -> dict[str, Any]:
    t0 = time.monotonic()
    proc = subprocess.Popen(["make", "demo"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    succeeded_at = None
    assert proc.stdout is not None
    for line in proc.stdout:
        if "━━ Succeeded ━━" in line and succeeded_at is None:
            succeeded_at = time.monotonic() - t0
    code = proc.wait()
    return {"exitCode": code, "toSucceededSeconds": None if succeeded_at is None else round(succeeded_at, 1),
            "totalSeconds": round(time.monotonic() - t0, 1)}


# ------------------------------------------------------------------ the report

def table(results: dict[str, Any]) -> str:
    det, fl, demo = results["detection"], results["fleet"], results.get("demo") or {}
    lines = [f"Measured by `make bench` on {results['date']} ({results['machine']}), "
             f"{results['runs']} runs per action, PD and TiKV at real timing (time scale 1), local tier "
             "(SIMULATED kubelets, PD and TiKV stores). `bench/results.json` has every run.", "",
             "| fault | operator median / p95 (s) | seed loop median / p95 (s) | median ratio | seed loop never saw |",
             "| --- | --- | --- | --- | --- |"]
    for action, r in det.items():
        op = f"{r.get('operatorMedian', float('nan')):.3f} / {r.get('operatorP95', float('nan')):.3f}"
        seed = (f"{r['seedMedian']:.1f} / {r['seedP95']:.1f}" if "seedMedian" in r else "-")
        ratio = f"{r['medianRatio']}x" if "medianRatio" in r else "-"
        lines.append(f"| {action} | {op} | {seed} | {ratio} | {r['seedMissed']} of {r['succeeded']} |")
    applies = [s["applyToInjected"] for r in det.values() for s in r["runs"] if s["applyToInjected"] is not None]
    started = [s["applyToStarted"] for r in det.values() for s in r["runs"] if s["applyToStarted"] is not None]
    if applies:
        lines += ["", "`kubectl apply` to fault injected, preflight included: median "
                  f"{statistics.median(applies):.2f} s, p95 {pct(applies, 95):.2f} s over {len(applies)} demos "
                  f"(of which apply to taken up by the operator: median {statistics.median(started):.2f} s)."]
    lines += ["", "| TidbClusters, one demo each at once | all Succeeded | detection median / p95 (s) | "
              "operator peak memory |", "| --- | --- | --- | --- |"]
    for r in fl.values():
        lines.append(f"| {r['clusters']} | {r['succeeded']} of {r['clusters']} in {r['allEndedSeconds']} s | "
                     f"{r['detectionMedian']:.3f} / {r['detectionP95']:.3f} | {r['operatorPeakMiB']} MiB |")
    ref, largest = single_demo_reference(results), fl.get(str(max((int(k) for k in fl), default=0)))
    if ref and largest and largest.get("detectionP95") is not None:
        lines += ["", f"Against the single demo ({ref[1]}: p95 {ref[0]:.3f} s), {largest['clusters']} at once give "
                  f"p95 {largest['detectionP95']:.3f} s, {largest['detectionP95'] / max(ref[0], 1e-3):.1f}x "
                  "(goal: at most 2x); the operator's peak memory is "
                  f"{largest['operatorPeakMiB']} MiB (goal: at most 150 MiB at 30)."]
        split = largest.get("split") or {}
        if len(split) == 3:
            a, b, c = (split[k] for k in ("toApiServer", "inApiServer", "answerToDetection"))
            lines += ["", f"Where those {largest['clusters']} detections went (median / p95, s; from the API "
                      f"server's audit log of the operator's DELETEs): until the DELETE reached the API server "
                      f"{a['median']:.3f} / {a['p95']:.3f}, inside the API server {b['median']:.3f} / "
                      f"{b['p95']:.3f}, from its answer to the detection {c['median']:.3f} / {c['p95']:.3f}."]
    if demo:
        lines += ["", f"A warm `make demo`: Succeeded {demo['toSucceededSeconds']} s after the command, "
                  f"{demo['totalSeconds']} s with the teardown (exit {demo['exitCode']})."]
    return "\n".join(lines)


def single_demo_reference(results: dict[str, Any]) -> tuple[float, str] | None:
    """The single-demo detection p95 the fleets are compared with: the pod-delete runs (the fleets'
    action, one demo at a time) when there are any, else the fleet of 1 (one run, and said so)."""
    runs = (results.get("detection") or {}).get("pod-delete") or {}
    if runs.get("operatorP95") is not None:
        return runs["operatorP95"], f"pod-delete, {runs['succeeded']} runs one at a time"
    one = (results.get("fleet") or {}).get("1") or {}
    if one.get("detectionP95") is not None:
        return one["detectionP95"], "the fleet of 1, a single run"
    return None


def write(results: dict[str, Any], out: Path, doc: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    text = doc.read_text()
    if START in text and END in text:
        head, rest = text.split(START, 1)
        doc.write_text(head + START + "\n" + table(results) + "\n" + END + rest.split(END, 1)[1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="chaosdemo-local bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "10")))
    p.add_argument("--actions", default="pod-delete,pod-kill,node-kill")
    p.add_argument("--fleet", default=os.environ.get("BENCH_FLEET", "1,10,30"))
    p.add_argument("--no-demo", action="store_true", help="skip the warm make demo")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results.json")
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmark.md")
    args = p.parse_args(argv)
    stop_on_signals()
    actions = [a for a in args.actions.split(",") if a]
    sizes = [int(n) for n in args.fleet.split(",") if n]
    # Measured on 2 cores (2026-12-02): a pod fault 0.5 min a run, node-kill 1 min, a fleet about 1.2 min.
    minutes = (args.runs * sum({"node-kill": 1.0}.get(a, 0.5) for a in actions) + 1.2 * len(sizes)
               + (0 if args.no_demo else 1.0))
    say(f"this takes about {minutes:.0f} minutes on 2 cores: {args.runs} demos per action at PD's real timing, "
        f"fleets of {sizes}{'' if args.no_demo else ', a warm make demo'}")
    env = LocalEnv(Path(tempfile.mkdtemp(prefix="chaosdemo-bench-")), time_scale=1.0)
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "runs": args.runs,
                               "machine": f"{os.cpu_count()} cores, {platform.machine()}, "
                                          f"Python {platform.python_version()}"}
    try:
        env.start()
        env.kubectl("create", "namespace", "bench")
        proc = start_operator(env, "operator-bench", CHAOSDEMO_TARGET_NAMESPACES=env.tidb_namespace)
        results["detection"] = detection(env, args.runs, actions)
        proc.stop()
        results["fleet"] = fleet(env, sizes)
    finally:
        env.stop()
    if not args.no_demo:
        say("a warm make demo")
        results["demo"] = warm_demo()
    write(results, args.out, args.doc)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
