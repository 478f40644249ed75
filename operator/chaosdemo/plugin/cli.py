"""`kubectl chaosdemo`: follow a demo live, list demos, write a demo's postmortem.

Installed as the console script ``kubectl-chaosdemo``, so kubectl finds it as
a plugin (``kubectl chaosdemo watch NAME``); also ``chaosdemo watch|list|report``.
It talks to the API server with the official ``kubernetes`` client and its
watch, with the same kubeconfig kubectl uses.

Exit codes of ``watch``: 0 Succeeded; 1 Failed or Aborted; 3 not found;
4 deleted while watched; 5 ``--timeout`` passed first. Of ``report -o junit``: 0 every demo Succeeded;
1 one Failed or was Aborted; 3 one named does not exist (or none matched); 6 one has not ended yet.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any, cast

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from chaosdemo.api.conditions import TERMINAL
from chaosdemo.api.models import API_GROUP, API_VERSION, PLURAL
from chaosdemo.api.suite import RUN_LABEL, SUITE_LABEL, SUITE_PLURAL
from chaosdemo.plugin.junit import EXIT, junit, steps_without_demo, verdict
from chaosdemo.plugin.page import page
from chaosdemo.plugin.views import Follower, Note, deadline, inert, lanes, ours, report, rows, sightings

__all__ = ["build_parser", "follow", "main"]

SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def connect(kubeconfig: str | None, context: str | None) -> tuple[client.ApiClient, str]:
    """An API client and the namespace kubectl would use (the context's, else default)."""
    try:
        config.load_kube_config(config_file=kubeconfig, context=context)
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
        if context:
            active = next((c for c in contexts if c["name"] == context), active)
        return client.ApiClient(), (active.get("context") or {}).get("namespace") or "default"
    except config.ConfigException:
        config.load_incluster_config()
        ns = SA_NAMESPACE.read_text().strip() if SA_NAMESPACE.exists() else "default"
        return client.ApiClient(), ns


def _demo(co: client.CustomObjectsApi, ns: str, name: str) -> dict[str, Any]:
    return cast(dict[str, Any], inert(co.get_namespaced_custom_object(API_GROUP, API_VERSION, ns, PLURAL, name)))


def _demo_or_say(co: client.CustomObjectsApi, ns: str, name: str, console: Console) -> dict[str, Any] | None:
    """The demo, or None after saying it does not exist."""
    try:
        return _demo(co, ns, name)
    except ApiException as e:
        if e.status == 404:
            console.print(Text(f"ChaosDemo {ns}/{name} not found"), style="red")
            return None
        raise


# ------------------------------------------------------------------ rendering

PHASE_STYLE = {"Succeeded": "bold green", "Failed": "bold red", "Aborted": "bold yellow"}


def render_note(note: Note) -> Text:
    if note.kind == "stage":
        return Text.assemble(("\n━━ ", "cyan"), (note.phase, PHASE_STYLE.get(note.phase, "bold cyan")),
                             (" ━━ ", "cyan"), (note.text, "cyan"))
    if note.kind == "broken":
        return Text.assemble(("  ✗ broken  ", "red"), note.text)
    if note.kind == "holds":
        return Text.assemble(("  ✓ holds   ", "green"), note.text)
    return Text.assemble(("  · ", "dim"), (note.text, "dim"))


def render_live(obj: dict[str, Any], follower: Follower, now: dt.datetime) -> Text:
    st = obj.get("status") or {}
    # The stage the banners last announced: footer and banner say the same, whatever the object says meanwhile.
    parts: list[tuple[str, str] | str] = [("⏱ ", ""), (follower.phase or st.get("phase") or "Pending", "bold")]
    due = deadline(obj, now)
    if due is not None:
        what, left = due
        parts += [" · ", (f"{what} deadline in {left:5.1f} s" if left >= 0 else f"{what} deadline passed",
                          "yellow" if left >= 0 else "red")]
    if follower.open:
        parts += [" · ", (f"{len(follower.open)} invariant(s) broken", "red")]
    drawn = lanes(st, now)
    width = max((len(label) for label, _ in drawn), default=0)
    for label, bar in drawn:
        parts += ["\n", (f"  {label:<{width}}  ", "bold" if label else "dim"),
                  *((c, "red" if c == "#" else "dim") for c in bar)]
    return Text.assemble(*parts)


def render_diagnosis(d: dict[str, Any]) -> Panel:
    """The diagnosis panel; text from Claude or the cluster is shown as text, never as markup."""
    body = Text()
    body.append(f"{d.get('summary', '')}\n\n", "bold")
    body.append(f"root cause: {d.get('rootCause', '')}\n")
    body.append(f"fault class: {d.get('faultClass', '')}   pod: {d.get('affectedPod', '')}   "
                f"store: {d.get('affectedStore', '')}   node: {d.get('affectedNode', '')}   "
                f"confidence: {d.get('confidence', '')}\n\nevidence:\n")
    for e in d.get("evidence") or []:
        body.append(f"  - {e}\n")
    body.append("\nrecommended:\n")
    for a in d.get("recommendedActions") or []:
        body.append(f"  - {a}\n")
    ok = bool(d.get("matchesInjectedFault"))
    body.append(f"\nmatches the injected fault: {ok}", "green" if ok else "red")
    body.append(f" ({d.get('grading', '')})")
    engine = d.get("engine", "") + (f" ({d['model']})" if d.get("model") else "")
    if d.get("fallbackReason"):
        engine += f" - rules engine because {d['fallbackReason']}"
    return Panel(body, title=Text(f"diagnosis by {engine}"), border_style="magenta")


def render_summary(obj: dict[str, Any]) -> Table:
    st = obj.get("status") or {}
    table = Table(title=Text(f"ChaosDemo {obj['metadata']['name']}: {st.get('phase', '')}"), show_header=False)
    for label, value in (("target", (st.get("target") or {}).get("pod", "")),
                         ("detected by", st.get("detectedBy", "")),
                         ("time to detect (s)", st.get("detectionSeconds", "")),
                         ("time to recover (s)", st.get("recoverySeconds", "")),
                         ("message", st.get("message", ""))):
        table.add_row(label, Text(str(value if value is not None else "")))
    for who, saw, what, end in sightings(st):
        table.add_row(f"{who} saw it", Text(f"{saw}{f' ({what})' if what and saw != 'never' else ''}"
                                            f"{f', its end {end}' if end else ''}"))
    return table


# ------------------------------------------------------------------ watch

class _Pump:
    """Relays the API server's watch of one demo into ``out`` from a thread, reconnecting as kubectl does.

    ``close`` ends it for good before the program exits: a thread left blocked in a
    socket read while the interpreter shuts down can abort the whole process
    (exit -6 on a busy machine), and ``watch`` promises its exit code.
    """

    def __init__(self, co: client.CustomObjectsApi, ns: str, name: str, rv: str) -> None:
        self.co, self.ns, self.name, self.rv = co, ns, name, rv
        self.out: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._watch: watch.Watch | None = None
        self._thread = threading.Thread(target=self._run, name="chaosdemo-watch", daemon=True)
        self._thread.start()

    def close(self, wait: float = 5.0) -> bool:
        """Stop the stream (its socket shut, so a blocked read returns) and wait; True when the thread ended."""
        self._stop.set()
        with self._lock:
            if self._watch is not None:
                self._watch.stop()
        self._thread.join(wait)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            w = watch.Watch()
            with self._lock:
                if self._stop.is_set():
                    return
                self._watch = w
            try:
                self._stream(w)
            except ApiException as e:
                if self._stop.is_set():
                    return
                if e.status == 410:  # the version is too old: start again from the object as it is now
                    self._restart()
                    continue
                self.out.put(("ERROR", f"API server: HTTP {e.status} {e.reason}; retrying"))
                self._stop.wait(1)
            except Exception as e:  # noqa: BLE001 - a dropped connection: reconnect, as kubectl -w does
                if self._stop.is_set():
                    return
                self.out.put(("ERROR", f"watch interrupted ({type(e).__name__}); reconnecting"))
                self._stop.wait(1)

    def _stream(self, w: watch.Watch) -> None:
        for ev in w.stream(self.co.list_namespaced_custom_object, API_GROUP, API_VERSION, self.ns, PLURAL,
                           field_selector=f"metadata.name={self.name}", resource_version=self.rv,
                           timeout_seconds=30):
            self.rv = ev["object"]["metadata"]["resourceVersion"]
            self.out.put((ev["type"], inert(ev["object"])))
            if self._stop.is_set():
                return

    def _restart(self) -> None:
        try:
            obj = _demo(self.co, self.ns, self.name)
            self.rv = obj["metadata"]["resourceVersion"]
            self.out.put(("MODIFIED", obj))
        except ApiException as e:
            self.out.put(("ERROR", f"API server: HTTP {e.status} {e.reason}"))


def follow(api: client.ApiClient, ns: str, name: str, console: Console, timeout: float = 0) -> int:
    """Follow one demo to its end, live; the exit code says how it ended."""
    co = client.CustomObjectsApi(api)
    obj = _demo_or_say(co, ns, name, console)
    if obj is None:
        return 3
    pump = _Pump(co, ns, name, obj["metadata"]["resourceVersion"])
    follower = Follower()
    spec = obj.get("spec") or {}
    console.print(Text.assemble(("ChaosDemo ", "bold"), (f"{ns}/{name}", "bold"), ": ",
                                (spec.get("fault") or {}).get("action", ""), " on TidbCluster ",
                                f"{(spec.get('cluster') or {}).get('name', '')}"))
    ends = time.monotonic() + timeout if timeout else None
    code = 5
    try:
        with Live(render_live(obj, follower, _now()), console=console, refresh_per_second=4, transient=True) as live:
            kind = "ADDED"
            while True:
                for note in follower.update(obj):
                    live.console.print(render_note(note))
                if (obj.get("status") or {}).get("phase") in TERMINAL:
                    code = 0 if obj["status"]["phase"] == "Succeeded" else 1
                    break
                if ends is not None and time.monotonic() > ends:
                    live.console.print(Text(f"--timeout {timeout:g}s passed; the demo goes on"), style="yellow")
                    break
                live.update(render_live(obj, follower, _now()))
                try:
                    kind, payload = pump.out.get(timeout=0.25)
                except queue.Empty:
                    continue
                if kind == "DELETED":
                    live.console.print(Text(f"ChaosDemo {ns}/{name} was deleted"), style="yellow")
                    return 4
                if kind == "ERROR":
                    live.console.print(Text(f"  ! {payload}"), style="yellow")
                    continue
                obj = payload
    finally:
        if not pump.close():
            console.print(Text("the API server's watch did not close within 5s"), style="yellow")
    if code in (0, 1):
        console.print(render_summary(obj))
        d = (obj.get("status") or {}).get("diagnosis")
        if d:
            console.print(render_diagnosis(d))
    return code


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ------------------------------------------------------------------ list, report

def list_demos(api: client.ApiClient, ns: str | None, console: Console) -> int:
    co = client.CustomObjectsApi(api)
    items: list[dict[str, Any]]
    if ns is None:
        items = inert(cast(dict[str, Any], co.list_cluster_custom_object(API_GROUP, API_VERSION, PLURAL))["items"])
    else:
        items = inert(cast(dict[str, Any], co.list_namespaced_custom_object(API_GROUP, API_VERSION, ns,
                                                                            PLURAL))["items"])
    if not items:
        console.print(f"No ChaosDemos found{' in namespace ' + ns if ns else ''}.")
        return 0
    table = Table(box=None, header_style="bold")
    columns = (["namespace"] if ns is None else []) + ["name", "action", "target", "phase", "detectedBy",
                                                       "detect", "recover", "diagnosis", "age"]
    heads = {"detectedBy": "DETECTED BY", "detect": "DETECT (s)", "recover": "RECOVER (s)"}
    for c in columns:
        table.add_column(heads.get(c, c.upper()), justify="right" if c in ("detect", "recover", "age") else "left")
    for row in rows(items, _now()):
        table.add_row(*(Text(row[c], style=PHASE_STYLE.get(row[c], "")) if c == "phase" else Text(row[c])
                        for c in columns))
    console.print(table)
    return 0


def report_demo(api: client.ApiClient, ns: str, name: str, output: str, console: Console) -> int:
    co, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    obj = _demo_or_say(co, ns, name, console)
    if obj is None:
        return 3
    uid = str(obj["metadata"].get("uid", ""))
    evs = core.list_namespaced_event(ns, field_selector=f"involvedObject.uid={uid},involvedObject.kind=ChaosDemo")
    events: list[dict[str, Any]] = sorted(ours(inert([api.sanitize_for_serialization(e) for e in evs.items]), uid),
                                          key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    if output == "json":
        sys.stdout.write(json.dumps({"apiVersion": obj["apiVersion"], "kind": obj["kind"],
                                     "metadata": {k: obj["metadata"].get(k) for k in ("name", "namespace", "uid")},
                                     "spec": obj.get("spec"), "status": obj.get("status"), "events": events},
                                    indent=2) + "\n")
    elif output == "md":
        sys.stdout.write(report(obj, events))
    elif output == "html":
        sys.stdout.write(page(obj, events, _now()))
    else:
        console.print(Markdown(report(obj, events)))
    return 0


def report_junit(api: client.ApiClient, ns: str, names: list[str], selector: str,
                 suite: dict[str, Any] | None = None) -> int:
    """Several demos (by name, or by label selector) as one JUnit document on stdout; the verdict as exit code.
    With ``suite``, its run's steps that made no demo are testcases too."""
    co = client.CustomObjectsApi(api)
    objs: list[dict[str, Any]] = []
    if selector or not names:
        listed = cast(dict[str, Any], co.list_namespaced_custom_object(API_GROUP, API_VERSION, ns, PLURAL,
                                                                       label_selector=selector or None))
        objs = inert(listed["items"])
        if suite is not None:
            objs += steps_without_demo(suite, [str(o["metadata"].get("name", "")) for o in objs])
        if not objs:
            Console(stderr=True).print(Text(f"No ChaosDemos in namespace {ns}"
                                            + (f" match {selector!r}" if selector else "")), style="red")
            return EXIT["missing"]
    for name in names:
        obj = _demo_or_say(co, ns, name, Console(stderr=True))
        if obj is None:
            return EXIT["missing"]
        objs.append(obj)
    sys.stdout.write(junit(objs, name=f"chaosdemo {ns}", timestamp=_now().strftime("%Y-%m-%dT%H:%M:%S")))
    return verdict(objs)


def report_suite(api: client.ApiClient, ns: str, name: str) -> int:
    """A suite's current (or last) run as JUnit: its demos, by the suite's and the run's labels."""
    co = client.CustomObjectsApi(api)
    try:
        suite = cast(dict[str, Any], co.get_namespaced_custom_object(API_GROUP, API_VERSION, ns, SUITE_PLURAL, name))
    except ApiException as e:
        if e.status != 404:
            raise
        Console(stderr=True).print(Text(f"ChaosDemoSuite {ns}/{name} not found"), style="red")
        return EXIT["missing"]
    run = (suite.get("status") or {}).get("run")
    if not isinstance(run, int) or run < 1:
        Console(stderr=True).print(Text(f"ChaosDemoSuite {ns}/{name} has not started a run yet"), style="red")
        return EXIT["missing"]
    code = report_junit(api, ns, [], f"{SUITE_LABEL}={name},{RUN_LABEL}={run}", suite)
    if code == EXIT["missing"]:
        return code
    status = suite.get("status") or {}
    if not status.get("verdict"):  # between steps every demo made may have ended, and the run has not
        return EXIT["running"]
    return EXIT["passed"] if status.get("verdict") == "Succeeded" and code == EXIT["passed"] else EXIT["failed"]


def build_parser(prog: str = "kubectl chaosdemo") -> argparse.ArgumentParser:
    # The connection flags go before or after the subcommand, as with kubectl.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kubeconfig", default=argparse.SUPPRESS,
                        help="kubeconfig file (default: KUBECONFIG or ~/.kube/config)")
    common.add_argument("--context", default=argparse.SUPPRESS)
    common.add_argument("-n", "--namespace", default=argparse.SUPPRESS, help="default: the context's namespace")
    parser = argparse.ArgumentParser(prog=prog, description="Follow, list and report ChaosDemos.", parents=[common])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("watch", parents=[common], help="follow one demo live: stages, deadlines, invariants, diagnosis")
    w.add_argument("name")
    w.add_argument("--timeout", type=float, default=0, help="give up after this many seconds (exit 5)")
    ls = sub.add_parser("list", parents=[common], help="every demo with its outcome, times and diagnosis")
    ls.add_argument("-A", "--all-namespaces", action="store_true")
    r = sub.add_parser("report", parents=[common], help="one demo's whole story, for a postmortem; or demos as "
                       "JUnit for a CI pipeline")
    r.add_argument("names", nargs="*", metavar="NAME", help="the demo (several, or none for all, with -o junit)")
    r.add_argument("-o", "--output", choices=["md", "json", "pretty", "html", "junit"], default="md",
                   help="md: Markdown (default); json; pretty: rendered in the terminal; html: one self-contained "
                   "page with the timeline drawn; junit: JUnit XML, one testcase per demo, and an exit code a "
                   "pipeline can gate on (0 all Succeeded, 1 one Failed or Aborted, 3 not found, 6 not ended)")
    r.add_argument("-l", "--selector", default="", help="with -o junit: the demos with these labels")
    r.add_argument("--suite", default="", help="with -o junit: the demos of this ChaosDemoSuite's current (or last) "
                   "run; a run still going exits 6")
    return parser


def main(argv: list[str] | None = None, prog: str = "kubectl chaosdemo") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    console = Console(highlight=False)
    api, ns = connect(getattr(args, "kubeconfig", None), getattr(args, "context", None))
    ns = getattr(args, "namespace", None) or ns
    try:
        if args.command == "watch":
            return follow(api, ns, args.name, console, args.timeout)
        if args.command == "list":
            return list_demos(api, None if args.all_namespaces else ns, console)
        if args.output == "junit" and args.suite:
            if args.names or args.selector:
                parser.error("report --suite takes no NAME and no -l")
            return report_suite(api, ns, args.suite)
        if args.output == "junit":
            return report_junit(api, ns, args.names, args.selector)
        if len(args.names) != 1 or args.selector or args.suite:
            parser.error(f"report -o {args.output} takes one NAME (several, -l or --suite only with -o junit)")
        return report_demo(api, ns, args.names[0], args.output, console)
    except KeyboardInterrupt:
        return 130
    finally:
        api.close()


if __name__ == "__main__":
    raise SystemExit(main())

