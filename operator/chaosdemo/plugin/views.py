"""What `kubectl chaosdemo` shows, computed from ChaosDemo objects (plain dicts); no I/O here.

``Follower`` turns the successive versions of one demo, as a watch delivers
them, into what a person following it needs: a banner when the stage changes,
a line when an invariant breaks or holds again, and the deadline in force.
``rows`` is the ``list`` table, ``report`` the postmortem in Markdown.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from chaosdemo.api.conditions import TERMINAL
from chaosdemo.api.models import EVENT_SOURCE, REPORTING_COMPONENT

__all__ = ["STAGES", "Follower", "Note", "deadline", "lanes", "report", "rows", "seconds", "sightings"]

STAGES = {
    "Pending": "waiting for the operator",
    "Injecting": "preflight passed, target chosen: injecting the fault",
    "Detecting": "fault injected: watching the invariants for the failure",
    "Diagnosing": "failure detected: gathering evidence and diagnosing, while waiting for recovery",
    "Recovering": "waiting for every invariant to hold for the stability window",
    "Succeeded": "the cluster recovered",
    "Failed": "the demo failed",
    "Aborted": "nothing was injected",
}


def _when(ts: str | None) -> dt.datetime | None:
    if not ts:
        return None
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))


def seconds(a: str | None, b: str | None) -> float | None:
    """Seconds from timestamp ``a`` to ``b``, or None if either is missing."""
    ta, tb = _when(a), _when(b)
    return None if ta is None or tb is None else (tb - ta).total_seconds()


@dataclass(frozen=True)
class Note:
    kind: str  # "stage", "broken", "holds", "message"
    text: str
    phase: str = ""


def deadline(obj: dict[str, Any], now: dt.datetime) -> tuple[str, float] | None:
    """The deadline in force (what, seconds left) for a demo, or None when none runs."""
    st, spec = obj.get("status") or {}, obj.get("spec") or {}
    timeouts = spec.get("timeouts") or {}
    injected = _when(st.get("injectedAt"))
    phase = st.get("phase", "")
    if injected is None or phase in TERMINAL:
        return None
    if phase == "Detecting":
        what, limit = "detection", float(timeouts.get("detectionSeconds", 120))
    else:
        what, limit = "recovery", float(timeouts.get("recoverySeconds", 600))
    return what, limit - (now - injected).total_seconds()


@dataclass
class Follower:
    """Feed it each version of the demo; it says what changed, in order."""

    phase: str = ""
    message: str = ""
    open: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    seen: set[tuple[str, str, str]] = field(default_factory=set)

    def update(self, obj: dict[str, Any]) -> list[Note]:
        st = obj.get("status") or {}
        notes: list[Note] = []
        phase = st.get("phase") or "Pending"
        if phase != self.phase:
            self.phase = phase
            notes.append(Note("stage", STAGES.get(phase, phase), phase))
        for v in st.get("violations") or []:
            key = (v.get("invariant", ""), v.get("subject", ""))
            what = f"{key[0]}{f' ({key[1]})' if key[1] else ''}"
            first = (*key, v.get("firstSeen", ""))
            if first not in self.seen:  # a breach not shown yet: open, or already over between two looks
                self.seen.add(first)
                if v.get("cleared") is None:
                    self.open[key] = v
                    notes.append(Note("broken", f"{what}: {v.get('message', '')}"))
                else:
                    notes.append(Note("broken", f"{what}: {v.get('message', '')} (held again by {v['cleared']})"))
            elif v.get("cleared") is not None and key in self.open:
                del self.open[key]
                notes.append(Note("holds", f"{what} holds again"))
        message = st.get("message", "")
        if message and message != self.message:
            self.message = message
            notes.append(Note("message", message))
        return notes


def rows(items: list[dict[str, Any]], now: dt.datetime) -> list[dict[str, str]]:
    """One row per demo for ``list``: outcome, times and diagnosis."""
    out = []
    for obj in sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])):
        meta, spec, st = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        d = st.get("diagnosis") or {}
        created = _when(meta.get("creationTimestamp"))
        verdict = ""
        if d:
            verdict = f"{d.get('faultClass', '')} {'matches' if d.get('matchesInjectedFault') else 'MISMATCH'}"
            verdict += f" ({d.get('engine', '')})"
        out.append({
            "namespace": meta.get("namespace", ""),
            "name": meta["name"],
            "action": (spec.get("fault") or {}).get("action", ""),
            "target": (st.get("target") or {}).get("pod", ""),
            "phase": st.get("phase", "Pending"),
            "detectedBy": st.get("detectedBy", ""),
            "detect": _num(st.get("detectionSeconds")),
            "recover": _num(st.get("recoverySeconds")),
            "diagnosis": verdict,
            "age": _age(now - created) if created else "",
        })
    return out


def _num(v: object) -> str:
    return "" if v is None else f"{float(v):.2f}" if float(v) < 10 else f"{float(v):.1f}"  # type: ignore[arg-type]


def _age(d: dt.timedelta) -> str:
    s = int(d.total_seconds())
    return f"{s}s" if s < 120 else f"{s // 60}m" if s < 7200 else f"{s // 3600}h"


# C0 and C1 control characters (ESC starts a terminal's escape sequences), newline and tab aside.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# What Markdown reads inline (emphasis, code, links and images, HTML, entities, tables, headings).
_MD_ACTIVE = re.compile(r"([\\`*_\[\]<>|~#&])")
_MD_BULLET = re.compile(r"^([-+=])(?=\s|$)")  # a list item or a heading's underline, not "-5"
_MD_NUMBERED = re.compile(r"^(\d+)([.)])(?=\s|$)")  # a numbered item, not "0.008"


def inert(value: Any) -> Any:
    """A demo or an Event as read, without control characters in any text: whoever may write a status field or
    an Event's message would otherwise write to the terminal of whoever reads it (``watch``, ``-o pretty``)."""
    if isinstance(value, str):
        return _CONTROL.sub("", value)
    if isinstance(value, dict):
        return {k: inert(v) for k, v in value.items()}
    if isinstance(value, list):
        return [inert(v) for v in value]
    return value


def ours(events: list[dict[str, Any]], uid: str) -> list[dict[str, Any]]:
    """The Events the operator posted on this demo: its uid (not another demo once of that name), and the
    operator as their source (not anyone else who may create Events in the namespace)."""
    return [e for e in events if (e.get("involvedObject") or {}).get("uid") == uid and uid
            and (e.get("reportingComponent") == REPORTING_COMPONENT
                 or (e.get("source") or {}).get("component") == EVENT_SOURCE)]


def _md(text: object) -> str:
    """Text from the cluster or from Claude, made inert in a Markdown table cell or line: one line, no
    control character, every character Markdown would read as markup escaped."""
    line = _CONTROL.sub("", " ".join(str(text).split()))
    return _MD_NUMBERED.sub(r"\1\\\2", _MD_BULLET.sub(r"\\\1", _MD_ACTIVE.sub(r"\\\1", line)))


def _summary(meta: dict[str, Any], spec: dict[str, Any], st: dict[str, Any]) -> list[str]:
    fault, target, cluster = spec.get("fault") or {}, st.get("target") or {}, spec.get("cluster") or {}
    lines = [f"# ChaosDemo {meta.get('namespace', '')}/{meta['name']}: {st.get('phase', 'Pending')}", "",
             _md(st.get("message", "")), "", "| | |", "| --- | --- |"]
    for label, value in (
        ("TidbCluster", f"{cluster.get('namespace') or meta.get('namespace', '')}/{cluster.get('name', '')}"),
        ("fault", fault.get("action", "")),
        ("target", f"{target.get('pod', '')} on node {target.get('node', '')}, PD store {target.get('storeId', '')}"
         if target else ""),
        ("injection", (st.get("injection") or {}).get("detail", "")),
        ("detected by", st.get("detectedBy", "")),
        ("time to detect", f"{st['detectionSeconds']} s" if st.get("detectionSeconds") is not None else ""),
        ("time to recover", f"{st['recoverySeconds']} s" if st.get("recoverySeconds") is not None else ""),
    ):
        lines.append(f"| {label} | {_md(value)} |")
    return lines


def _timeline(st: dict[str, Any]) -> list[str]:
    lines = ["", "## Timeline", "", "| when | +s | what |", "| --- | --- | --- |"]
    start = st.get("injectedAt") or st.get("startedAt")
    moments = [(st.get(key), what) for key, what in (
        ("startedAt", "the operator took it up"), ("injectedAt", "fault injected"),
        ("detectedAt", "failure detected"), ("diagnosedAt", "diagnosis ready"),
        ("recoveredAt", "recovered (stability window passed)"), ("finishedAt", "ended"))]
    moments.append(((st.get("injection") or {}).get("undoneAt"), "fault undone (node started)"))
    for when, what in moments:
        if when:
            off = seconds(start, when)
            lines.append(f"| {when} | {'' if off is None else f'{off:+.2f}'} | {what} |")
    return lines


def sightings(st: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Per observer (Kubernetes, PD, tidb-operator, ChaosDemo): when after the injection it saw the fault,
    what it showed, and when it saw the end; from status.observers."""
    out = []
    for o in st.get("observers") or []:
        saw, end = o.get("sawFaultSeconds"), o.get("sawEndSeconds")
        what = o.get("what", "") + (f"; Down at {o['downAt']}" if o.get("downAt") else "")
        out.append((LANE_NAMES.get(o.get("observer", ""), o.get("observer", "")),
                    "never" if saw is None else f"+{saw:.2f} s", what, "" if end is None else f"+{end:.2f} s"))
    return out


LANE_NAMES = {"kubernetes": "Kubernetes", "pd": "PD", "tidb-operator": "tidb-operator", "chaosdemo": "ChaosDemo",
              "tidb-clients": "TiDB's clients"}


def lanes(st: dict[str, Any], now: dt.datetime, width: int = 48) -> list[tuple[str, str]]:
    """The demo as lanes over time, from the injection to its end (or ``now``): one per observer, then one
    per invariant that broke (per subject); ``#`` where it showed the fault, ``.`` where it did not, blank
    before its first look. The last row is the scale. Empty before the injection."""
    start = _when(st.get("injectedAt"))
    if start is None:
        return []
    span = max(((_when(st.get("finishedAt")) or now) - start).total_seconds(), 1.0)

    def bar(spans: list[tuple[float | None, float | None]], open_until: float = span) -> str:
        cells = []
        for i in range(width):
            t = span * (i + 0.5) / width
            on = any(a is not None and a <= t < (open_until if b is None else b) for a, b in spans)
            cells.append("#" if on else ".")
        return "".join(cells)

    out = [(LANE_NAMES.get(o.get("observer", ""), o.get("observer", "")),
            bar([(o.get("sawFaultSeconds"), o.get("sawEndSeconds"))])) for o in st.get("observers") or []]
    breaches: dict[str, list[tuple[float | None, float | None]]] = {}
    for v in st.get("violations") or []:
        key = f"{v.get('invariant', '')} {v.get('subject', '')}".strip()
        breaches.setdefault(key, []).append((seconds(st.get("injectedAt"), v.get("firstSeen")),
                                             seconds(st.get("injectedAt"), v.get("cleared"))))
    out += [(key[:32], bar(spans)) for key, spans in breaches.items()]
    scale = f"0 s{' ' * max(1, width - 3 - len(f'{span:.0f} s'))}{span:.0f} s"
    return [*out, ("", scale)]


def _sightings(st: dict[str, Any]) -> list[str]:
    rows = sightings(st)
    if not rows:
        return []
    lines = ["", "## Who saw it when", "", "| observer | saw the fault | what it showed | saw it end |",
             "| --- | --- | --- | --- |"]
    lines += [f"| {who} | {saw} | {_md(what)} | {end} |" for who, saw, what, end in rows]
    drawn = lanes(st, _when(st.get("finishedAt")) or dt.datetime.now(dt.UTC))
    width = max(len(label) for label, _ in drawn)
    return [*lines, "", "```", *(f"{label:<{width}}  {bar}" for label, bar in drawn), "```"]


def _felt(impact: dict[str, Any] | None) -> list[str]:
    """What TiDB's clients felt (the SQL canary), when the demo ran one."""
    if not impact:
        return []

    def num(key: str, unit: str = "") -> str:
        v = impact.get(key)
        return "" if v is None else f"{v:.3g}{unit}" if isinstance(v, float) else f"{v}{unit}"

    rows = (("baseline", f"{num('baselineThroughput')} statements/s, p99 {num('baselineP99Seconds', ' s')}"),
            ("lowest throughput", f"{num('lowestThroughputShare')} of baseline"),
            ("worst p99, slowest statement", f"{num('worstP99Seconds', ' s')}, {num('slowestStatementSeconds', ' s')}"),
            ("failures", ", ".join(f"{k} x{v}" for k, v in sorted((impact.get("failures") or {}).items())) or "none"),
            ("longest unavailable", num("longestUnavailableSeconds", " s")),
            ("users served again", f"+{num('servedAgainSeconds', ' s')}" if impact.get("servedAgainSeconds")
             is not None else "never stopped being served"),
            ("rows the broken store led", f"{num('affectedRowsShare')}: {impact.get('affectedRows')} against the "
             f"others {impact.get('otherRows')}"),
            ("bank total held", str(impact.get("bankTotalHeld"))),
            ("budget broken by", "; ".join(impact.get("budgetBreaches") or []) or "nothing"),
            ("note", impact.get("note", "")))
    return ["", "## What TiDB's clients felt", "", "| | |", "| --- | --- |",
            *(f"| {label} | {_md(value)} |" for label, value in rows if value)]


def _violations_and_conditions(st: dict[str, Any]) -> list[str]:
    lines = ["", "## Invariants that broke", ""]
    if st.get("violations"):
        lines += ["| invariant | subject | first seen | held again | what was seen |",
                  "| --- | --- | --- | --- | --- |"]
        for v in st["violations"]:
            lines.append(f"| {_md(v.get('invariant', ''))} | {_md(v.get('subject', ''))} | {v.get('firstSeen', '')} "
                         f"| {v.get('cleared') or 'still broken'} | {_md(v.get('message', ''))} |")
        if st.get("violationsDropped"):
            lines.append(f"\n{st['violationsDropped']} more were dropped from status.")
    else:
        lines.append("none recorded")
    lines += ["", "## Conditions", "", "| type | status | reason | message |", "| --- | --- | --- | --- |"]
    for c in st.get("conditions") or []:
        lines.append(f"| {c['type']} | {c['status']} | {c.get('reason', '')} | {_md(c.get('message', ''))} |")
    return lines


def _diagnosis(d: dict[str, Any] | None) -> list[str]:
    lines = ["", "## Diagnosis", ""]
    if not d:
        return [*lines, "no diagnosis recorded"]
    engine = d.get("engine", "") + (f" ({d['model']})" if d.get("model") else "")
    lines += [f"**{_md(d.get('summary', ''))}**", "", f"- engine: {_md(engine)}"]
    if d.get("fallbackReason"):
        lines.append(f"- the rules engine answered because: {_md(d['fallbackReason'])}")
    lines += [f"- root cause: {_md(d.get('rootCause', ''))}",
              f"- fault class: {d.get('faultClass', '')}; pod {_md(d.get('affectedPod', ''))}, store "
              f"{_md(d.get('affectedStore', ''))}, node {_md(d.get('affectedNode', ''))}; confidence "
              f"{d.get('confidence', '')}",
              "- graded against what was injected: "
              f"{'matches' if d.get('matchesInjectedFault') else 'does NOT match'} ({_md(d.get('grading', ''))})",
              "", "Evidence:", ""]
    lines += [f"- {_md(e)}" for e in d.get("evidence") or []] or ["- none given"]
    lines += ["", "Recommended actions:", ""]
    lines += [f"- {_md(a)}" for a in d.get("recommendedActions") or []] or ["- none given"]
    return lines


def _events(events: list[dict[str, Any]]) -> list[str]:
    lines = ["", "## Events", ""]
    if not events:
        return [*lines, "none (events expire after an hour by default)"]
    lines += ["| when | type | reason | message |", "| --- | --- | --- | --- |"]
    for e in events:
        when = e.get("lastTimestamp") or e.get("eventTime") or ""
        lines.append(f"| {_md(when)} | {_md(e.get('type', ''))} | {_md(e.get('reason', ''))} | "
                     f"{_md(e.get('message', ''))} |")
    return lines


def report(obj: dict[str, Any], events: list[dict[str, Any]]) -> str:
    """The whole story of one demo as Markdown, for a postmortem."""
    meta, spec, st = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    lines = [*_summary(meta, spec, st), *_timeline(st), *_sightings(st), *_felt(st.get("impact")),
             *_violations_and_conditions(st),
             *_diagnosis(st.get("diagnosis")), *_events(events)]
    return "\n".join(lines) + "\n"
