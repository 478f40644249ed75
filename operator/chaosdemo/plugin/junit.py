"""Demos as a JUnit report, for CI pipelines: one testcase per demo, and an exit code a gate can use (pure).

The shape is the one CI systems read (Jenkins' and Surefire's ``junit-10.xsd``, which GitLab, GitHub
actions and others follow): a ``testsuites`` root holding one ``testsuite``, its ``properties`` (each demo's
figures, named ``<namespace>/<demo>.<figure>``, since a testcase may hold none), and a ``testcase`` per demo:

- Succeeded: a pass;
- Failed (the fault was injected and the cluster or its clients broke what the demo holds): ``failure``,
  typed with the reason (``NotRecovered``, ``BudgetExceeded``, ``DataInconsistent``...);
- Aborted (nothing was injected: the preflight refused, the target or the fault was not available): ``error``;
- not ended yet: ``skipped``, saying the phase;
- a suite's step that made no demo (``steps_without_demo``): ``skipped`` when stopOnFailure skipped it, a
  ``failure`` typed ``NotCreated`` when the operator could not create its demo.

Every text comes from a status, so it is bounded, stripped of what XML 1.0 cannot hold, and escaped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any

from chaosdemo.plugin.views import seconds

__all__ = ["EXIT", "junit", "steps_without_demo", "verdict"]

# Exit codes of `report -o junit` (and of verdict): documented in docs/using.md.
EXIT = {"passed": 0, "failed": 1, "missing": 3, "running": 6}

_NOT_XML = re.compile(r"[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
MAX_TEXT = 2000

FIGURES = (  # property name, where in the status
    ("phase", ("phase",)),
    ("action", ()),
    ("target", ("target", "pod")),
    ("detectedBy", ("detectedBy",)),
    ("detectionSeconds", ("detectionSeconds",)),
    ("recoverySeconds", ("recoverySeconds",)),
    ("diagnosisFaultClass", ("diagnosis", "faultClass")),
    ("diagnosisMatches", ("diagnosis", "matchesInjectedFault")),
    ("longestUnavailableSeconds", ("impact", "longestUnavailableSeconds")),
    ("servedAgainSeconds", ("impact", "servedAgainSeconds")),
    ("lowestThroughputShare", ("impact", "lowestThroughputShare")),
    ("bankTotalHeld", ("impact", "bankTotalHeld")),
)


def _text(value: object, limit: int = MAX_TEXT) -> str:
    s = _NOT_XML.sub("", value if isinstance(value, str) else str(value))
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _dig(status: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = status
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else _text(value, 200)


def _outcome(status: dict[str, Any]) -> tuple[str, str, str]:
    """("passed" | "failed" | "error" | "running", reason, message) of one demo."""
    phase = str(status.get("phase") or "Pending")
    summary = next((c for c in status.get("conditions") or [] if isinstance(c, dict) and c.get("type") == "Succeeded"
                    and c.get("status") in ("True", "False")), {})
    reason, message = str(summary.get("reason") or phase), str(status.get("message") or summary.get("message") or "")
    if phase == "Succeeded":
        return "passed", reason, message
    if phase == "Failed":
        return "failed", reason, message
    if phase == "Aborted":
        return "error", reason, message
    if phase == "Skipped":
        return "skipped", reason, message
    return "running", phase, message


def steps_without_demo(suite: dict[str, Any], demos: Iterable[str]) -> list[dict[str, Any]]:
    """The current run's steps that have no demo among ``demos``, each as the demo it would have been (its name,
    action, and the step's phase and words), so that a pipeline sees every step of the run."""
    meta, st = suite.get("metadata") or {}, suite.get("status") or {}
    have, out = set(demos), []
    for step in st.get("steps") or []:
        if not isinstance(step, dict) or step.get("phase") not in ("Skipped", "Failed"):
            continue
        name = str(step.get("demo") or f"{meta.get('name', '')}-r{st.get('run', 0)}-{step.get('name', '')}")
        if name in have:
            continue
        reason = "Skipped" if step.get("phase") == "Skipped" else str(step.get("reason") or "NotCreated")
        out.append({"metadata": {"name": name, "namespace": meta.get("namespace", "")},
                    "spec": {"fault": {"action": step.get("action") or "none"}},
                    "status": {"phase": step["phase"], "message": step.get("message") or "",
                               "conditions": [{"type": "Succeeded", "status": "False", "reason": reason}]}})
    return out


def verdict(objs: Iterable[dict[str, Any]]) -> int:
    """The exit code: 1 if any demo Failed or was Aborted, else 6 if any has not ended, else 0 (none: 3)."""
    outcomes = [_outcome(o.get("status") or {})[0] for o in objs]
    if not outcomes:
        return EXIT["missing"]
    if any(o in ("failed", "error") for o in outcomes):
        return EXIT["failed"]
    return EXIT["running"] if "running" in outcomes else EXIT["passed"]


def _time(value: float | None) -> str:
    return f"{max(value or 0.0, 0.0):.3f}"


def junit(objs: list[dict[str, Any]], *, name: str = "chaosdemo", timestamp: str = "") -> str:
    """The demos as a JUnit XML document (``testsuites`` > ``testsuite`` > a ``testcase`` per demo)."""
    objs = sorted(objs, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"].get("name", "")))
    counts = {"tests": len(objs), "failures": 0, "errors": 0, "skipped": 0}
    total = 0.0
    props = ET.Element("properties")
    cases = []
    for obj in objs:
        meta, spec, st = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        ident = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        action = str((spec.get("fault") or {}).get("action") or "pod-delete")
        took = seconds(st.get("startedAt"), st.get("finishedAt")) or 0.0
        total += max(took, 0.0)
        case = ET.Element("testcase", name=_text(ident, 300), time=_time(took),
                          classname=_text(f"chaosdemo.{action}" + (".dry-run" if spec.get("dryRun") else ""), 300))
        outcome, reason, message = _outcome(st)
        if outcome in ("failed", "error"):
            counts["failures" if outcome == "failed" else "errors"] += 1
            child = ET.SubElement(case, "failure" if outcome == "failed" else "error", type=_text(reason, 200),
                                  message=_text(message))
            child.text = _text(f"{reason}: {message}")
        elif outcome == "running":
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=_text(f"not ended yet: {reason}", 200))
        elif outcome == "skipped":
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=_text(f"not run: {message or reason}", 200))
        out = ET.SubElement(case, "system-out")
        out.text = _text("\n".join(f"{key}: {_shown(v)}" for key, v in _figures(st, action) if _shown(v) != ""))
        for key, value in _figures(st, action):
            if _shown(value) != "":
                ET.SubElement(props, "property", name=_text(f"{ident}.{key}", 300), value=_shown(value))
        cases.append(case)
    attrs = {"name": _text(name, 200), "time": _time(total), **{k: str(v) for k, v in counts.items()}}
    suite = ET.Element("testsuite", {**attrs, **({"timestamp": _text(timestamp, 40)} if timestamp else {})})
    if len(props):
        suite.append(props)
    suite.extend(cases)
    root = ET.Element("testsuites", {k: attrs[k] for k in ("name", "time", "tests", "failures", "errors")})
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _figures(st: dict[str, Any], action: str) -> list[tuple[str, Any]]:
    return [(key, action if key == "action" else _dig(st, path)) for key, path in FIGURES]
