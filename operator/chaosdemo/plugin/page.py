"""One demo as a self-contained HTML page: the timeline drawn as SVG by this code, and the story (pure).

No script, no external style, font or image: the page is one file that opens anywhere. Everything that
comes from the cluster or from an engine (names, messages, the diagnosis) is escaped. The timeline has a
lane per observer (Kubernetes, PD, tidb-operator, ChaosDemo) and per invariant that broke, its bars where
each showed the fault, and marks for the injection, the detection, the diagnosis, the fault undone and
the recovery, with the stability window shaded.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from chaosdemo.plugin.views import LANE_NAMES, seconds, sightings

__all__ = ["COLORS", "page", "timeline_svg"]

# Colours the page test looks for in the rendered PNG (tests/local/test_report_page.py).
COLORS = {"fault": "#d62728", "ours": "#1f77b4", "breach": "#ff7f0e", "stability": "#c7e9c0", "mark": "#444444"}
LABEL_W, PLOT_W, LANE_H, TOP = 230, 640, 26, 34


def _e(v: object) -> str:
    return html.escape(str(v), quote=True)


def _lanes(st: dict[str, Any]) -> list[tuple[str, list[tuple[float, float | None]], str, str]]:
    """(label, intervals in seconds after the injection, colour, note) per lane."""
    out: list[tuple[str, list[tuple[float, float | None]], str, str]] = []
    for o in st.get("observers") or []:
        who = o.get("observer", "")
        saw = o.get("sawFaultSeconds")
        spans: list[tuple[float, float | None]] = [] if saw is None else [(saw, o.get("sawEndSeconds"))]
        out.append((LANE_NAMES.get(who, who), spans, COLORS["ours"] if who == "chaosdemo" else COLORS["fault"],
                    "" if saw is not None else str(o.get("what") or "never showed the fault")))
    breaches: dict[str, list[tuple[float, float | None]]] = {}
    for v in st.get("violations") or []:
        start = seconds(st.get("injectedAt"), v.get("firstSeen"))
        if start is not None:
            breaches.setdefault(f"{v.get('invariant', '')} {v.get('subject', '')}".strip()[:40], []).append(
                (start, seconds(st.get("injectedAt"), v.get("cleared"))))
    out += [(label, spans, COLORS["breach"], "") for label, spans in breaches.items()]
    return out


def _marks(st: dict[str, Any]) -> list[tuple[str, float]]:
    injected = st.get("injectedAt")
    found = [("injected", 0.0)]
    for key, label in (("detectedAt", "detected"), ("diagnosedAt", "diagnosed"), ("recoveredAt", "recovered")):
        s = seconds(injected, st.get(key))
        if s is not None:
            found.append((label, s))
    undone = seconds(injected, (st.get("injection") or {}).get("undoneAt"))
    if undone is not None:
        found.append(("fault undone", undone))
    return found


def timeline_svg(st: dict[str, Any], spec: dict[str, Any], now: dt.datetime) -> str:
    """The timeline as an SVG element ('' before the injection)."""
    injected = st.get("injectedAt")
    if not injected:
        return ""
    lanes, marks = _lanes(st), _marks(st)
    stability = float((spec.get("timeouts") or {}).get("stabilitySeconds", 0) or 0)
    recovered = seconds(injected, st.get("recoveredAt"))
    end = seconds(injected, st.get("finishedAt")) or seconds(injected, now.isoformat()) or 1.0
    span = max(end, (recovered or 0) + stability, *(s for _, s in marks), 1.0)

    def x(t: float) -> float:
        return round(LABEL_W + PLOT_W * min(max(t, 0.0), span) / span, 1)

    height = TOP + LANE_H * len(lanes) + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{LABEL_W + PLOT_W + 20}" height="{height}" '
             f'viewBox="0 0 {LABEL_W + PLOT_W + 20} {height}" role="img" aria-label="timeline of the demo">',
             '<rect width="100%" height="100%" fill="#ffffff"/>']
    if recovered is not None and stability:
        parts.append(f'<rect x="{x(recovered)}" y="{TOP - 6}" width="{x(recovered + stability) - x(recovered)}" '
                     f'height="{LANE_H * len(lanes) + 6}" fill="{COLORS["stability"]}"><title>stability window '
                     f'({stability:g} s)</title></rect>')
    bottom = TOP + LANE_H * len(lanes)
    for label, t in marks:  # under the bars
        parts.append(f'<line x1="{x(t)}" y1="{TOP - 10}" x2="{x(t)}" y2="{bottom}" stroke="{COLORS["mark"]}" '
                     f'stroke-dasharray="3,3"><title>{_e(label)} +{t:.2f} s</title></line>')
    for i, (label, spans, color, note) in enumerate(lanes):
        y = TOP + i * LANE_H
        parts.append(f'<text x="{LABEL_W - 8}" y="{y + 16}" text-anchor="end" font-size="12" '
                     f'font-family="sans-serif">{_e(label)}</text>')
        parts.append(f'<line x1="{LABEL_W}" y1="{y + 12}" x2="{LABEL_W + PLOT_W}" y2="{y + 12}" stroke="#dddddd"/>')
        for a, b in spans:
            b_, until = (span, "the end") if b is None else (b, f"+{b:.2f} s")
            parts.append(f'<rect x="{x(a)}" y="{y + 4}" width="{max(x(b_) - x(a), 2)}" height="16" fill="{color}">'
                         f'<title>{_e(label)}: +{a:.2f} s to {until}</title></rect>')
        if note:
            parts.append(f'<text x="{LABEL_W + 6}" y="{y + 16}" font-size="11" fill="#888888" '
                         f'font-family="sans-serif">{_e(note)}</text>')
    for j, (label, t) in enumerate(sorted(marks, key=lambda m: m[1])):
        parts.append(f'<text x="{x(t) + 2}" y="{12 + (j % 2) * 11}" font-size="10" font-family="sans-serif" '
                     f'fill="{COLORS["mark"]}">{_e(label)}</text>')
    for k in range(6):
        t = span * k / 5
        parts.append(f'<text x="{x(t)}" y="{bottom + 18}" font-size="10" text-anchor="middle" '
                     f'font-family="sans-serif">{t:.0f} s</text>')
    parts.append("</svg>")
    return "\n".join(parts)


STYLE = ("body{font-family:sans-serif;margin:24px;color:#222;max-width:960px}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}h1{font-size:20px}"
         "h2{font-size:16px;margin-top:24px}code{font-size:12px}")


def _rows(pairs: list[tuple[str, object]]) -> str:
    return "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in pairs if v not in (None, ""))


def page(obj: dict[str, Any], events: list[dict[str, Any]], now: dt.datetime) -> str:
    """The whole page."""
    meta, spec, st = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    d = st.get("diagnosis") or {}
    title = f"ChaosDemo {meta.get('namespace', '')}/{meta['name']}: {st.get('phase', 'Pending')}"
    body = [f"<h1>{_e(title)}</h1>", "<table>" + _rows([
        ("fault", (spec.get("fault") or {}).get("action")), ("target", (st.get("target") or {}).get("pod")),
        ("node", (st.get("target") or {}).get("node")), ("detected by", st.get("detectedBy")),
        ("time to detect (s)", st.get("detectionSeconds")), ("time to recover (s)", st.get("recoverySeconds")),
        ("message", st.get("message"))]) + "</table>", "<h2>Timeline</h2>", timeline_svg(st, spec, now)]
    seen = sightings(st)
    if seen:
        body.append("<h2>Who saw it when</h2><table><tr><th>observer</th><th>saw the fault</th><th>what it showed"
                    "</th><th>saw it end</th></tr>" + "".join(
                        f"<tr><td>{_e(w)}</td><td>{_e(s)}</td><td>{_e(what)}</td><td>{_e(e)}</td></tr>"
                        for w, s, what, e in seen) + "</table>")
    if d:
        body += ["<h2>Diagnosis</h2>", "<table>" + _rows([
            ("engine", f"{d.get('engine', '')} {d.get('model', '')}".strip()), ("summary", d.get("summary")),
            ("root cause", d.get("rootCause")), ("fault class", d.get("faultClass")),
            ("matches the injected fault", d.get("matchesInjectedFault")), ("grading", d.get("grading")),
            ("confidence", d.get("confidence")), ("cited evidence", ", ".join(d.get("citedEvidence") or [])),
            ("not in the evidence", ", ".join(d.get("unknownCitations") or []))]) + "</table>",
            "<ul>" + "".join(f"<li>{_e(e)}</li>" for e in d.get("evidence") or []) + "</ul>"]
    if events:
        body.append("<h2>Events</h2><table>" + "".join(
            f"<tr><td>{_e(e.get('lastTimestamp') or e.get('eventTime') or '')}</td><td>{_e(e.get('type', ''))}</td>"
            f"<td>{_e(e.get('reason', ''))}</td><td>{_e(e.get('message', ''))}</td></tr>" for e in events) + "</table>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
