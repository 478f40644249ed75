"""`report -o junit`: demos as the JUnit a CI system reads, validated against that schema (Jenkins' and
Surefire's junit-10.xsd, as pytest's own tests carry it: fetched from pytest's sdist on PyPI once, cached)."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from chaosdemo.plugin.junit import EXIT, junit, steps_without_demo, verdict

PYTEST = "9.2.0"  # the version pinned in pyproject.toml's test extras
XSD_MEMBER = f"pytest-{PYTEST}/testing/example_scripts/junit-10.xsd"


@pytest.fixture(scope="session")
def schema() -> xmlschema.XMLSchema:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "chaosdemo" / "schemas"
    xsd = cache / f"junit-10-from-pytest-{PYTEST}.xsd"
    if not xsd.exists():
        print(f"fetching the JUnit schema from pytest {PYTEST}'s sdist on PyPI (once; about 4 s)", file=sys.stderr)
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory() as d:
            got = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                                  "-q", f"pytest=={PYTEST}", "-d", d], capture_output=True, text=True, timeout=300)
            assert got.returncode == 0, f"pip could not fetch pytest's sdist: {got.stderr[-2000:]}"
            with tarfile.open(Path(d) / f"pytest-{PYTEST}.tar.gz") as tar:
                member = tar.extractfile(XSD_MEMBER)
                assert member is not None, f"no {XSD_MEMBER} in pytest's sdist"
                cache.mkdir(parents=True, exist_ok=True)
                tmp = xsd.with_suffix(".tmp")
                tmp.write_bytes(member.read())
                tmp.replace(xsd)
        print(f"cached {xsd} in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    return xmlschema.XMLSchema(str(xsd))


def demo(name: str, phase: str, *, reason: str = "", message: str = "", ns: str = "tidb-cluster",
         action: str = "pod-kill", dry: bool = False, **status: Any) -> dict[str, Any]:
    conds = []
    if phase in ("Succeeded", "Failed", "Aborted"):
        conds = [{"type": "Succeeded", "status": "True" if phase == "Succeeded" else "False",
                  "reason": reason or phase, "message": message}]
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"fault": {"action": action}, "dryRun": dry},
            "status": {"phase": phase, "message": message, "conditions": conds,
                       "startedAt": "2026-12-07T10:00:00Z", "finishedAt": "2026-12-07T10:01:05.5Z", **status}}


PASSED = demo("kill-1", "Succeeded", detectionSeconds=2.4, recoverySeconds=41.0, detectedBy="tikv-pods-ready",
              target={"pod": "basic-tikv-1"}, diagnosis={"faultClass": "pod-failure", "matchesInjectedFault": True},
              impact={"longestUnavailableSeconds": 0.3, "bankTotalHeld": True})
FAILED = demo("pause-2", "Failed", reason="BudgetExceeded", action="process-pause",
              message="what TiDB's clients felt broke the budget: <throughput> fell to 12% & more")
ABORTED = demo("sick", "Aborted", reason="ClusterUnhealthy", message="cluster is already unhealthy")
RUNNING = demo("late", "Recovering", finishedAt=None)


def parse(doc: str) -> ET.Element:
    return ET.fromstring(doc.encode())


def test_every_outcome_is_valid_junit_with_one_testcase_per_demo(schema: xmlschema.XMLSchema) -> None:
    doc = junit([RUNNING, FAILED, PASSED, ABORTED], name="chaosdemo tidb-cluster", timestamp="2026-12-07T10:02:00")
    schema.validate(doc)
    suite = parse(doc).find("testsuite")
    assert suite is not None
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "4", "failures": "1", "errors": "1", "skipped": "1"}
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert list(cases) == ["tidb-cluster/kill-1", "tidb-cluster/late", "tidb-cluster/pause-2", "tidb-cluster/sick"]
    assert len(cases["tidb-cluster/kill-1"]) == 1 and cases["tidb-cluster/kill-1"].get("time") == "65.500"
    failure = cases["tidb-cluster/pause-2"].find("failure")
    assert failure is not None and failure.get("type") == "BudgetExceeded"
    assert failure.get("message") == "what TiDB's clients felt broke the budget: <throughput> fell to 12% & more"
    assert cases["tidb-cluster/pause-2"].get("classname") == "chaosdemo.process-pause"
    error = cases["tidb-cluster/sick"].find("error")
    assert error is not None and error.get("type") == "ClusterUnhealthy"
    skipped = cases["tidb-cluster/late"].find("skipped")
    assert skipped is not None and "Recovering" in (skipped.get("message") or "")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["tidb-cluster/kill-1.detectionSeconds"] == "2.4"
    assert props["tidb-cluster/kill-1.recoverySeconds"] == "41.0"
    assert props["tidb-cluster/kill-1.diagnosisMatches"] == "true"
    assert props["tidb-cluster/kill-1.longestUnavailableSeconds"] == "0.3"
    assert props["tidb-cluster/kill-1.bankTotalHeld"] == "true"


def test_text_from_a_status_cannot_break_the_xml(schema: xmlschema.XMLSchema) -> None:
    hostile = demo("x", "Failed", reason="NotRecovered\x00", message="]]></failure><testcase name='forged'/>\x1b[2J"
                   + "y" * 10_000, detectedBy="\x07bell")
    doc = junit([hostile])
    schema.validate(doc)
    root = parse(doc)
    assert [c.get("name") for c in root.iter("testcase")] == ["tidb-cluster/x"], "no forged testcase"
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None and len(failure.get("message") or "") <= 2000
    assert "\x00" not in doc and "\x1b" not in doc and "\x07" not in doc


def test_no_demo_is_an_empty_but_valid_report(schema: xmlschema.XMLSchema) -> None:
    schema.validate(junit([]))


@pytest.mark.parametrize(("objs", "code"), [
    ([PASSED], EXIT["passed"]),
    ([PASSED, demo("dry", "Succeeded", dry=True)], EXIT["passed"]),
    ([PASSED, RUNNING], EXIT["running"]),
    ([RUNNING, FAILED], EXIT["failed"]),
    ([PASSED, ABORTED], EXIT["failed"]),
    ([], EXIT["missing"]),
])
def test_the_exit_code_is_the_gate(objs: list[dict[str, Any]], code: int) -> None:
    assert verdict(objs) == code


def test_a_suites_steps_that_made_no_demo_are_testcases_too(schema: xmlschema.XMLSchema) -> None:
    """A pipeline sees every step of the run: one skipped by stopOnFailure as skipped, one whose demo could not be
    created as a failure typed NotCreated; a step with a demo is that demo's testcase, not twice."""
    suite = {"metadata": {"name": "gate", "namespace": "tidb-cluster"}, "status": {"run": 2, "steps": [
        {"name": "pause", "demo": "gate-r2-pause", "action": "process-pause", "phase": "Failed",
         "reason": "BudgetExceeded"},
        {"name": "taken", "demo": "", "action": "pod-kill", "phase": "Failed", "reason": "NotCreated",
         "message": "chaosdemos \"gate-r2-taken\" already exists"},
        {"name": "kill", "action": "pod-kill", "phase": "Skipped", "message": "stopOnFailure: step pause failed"},
        {"name": "later", "action": "pod-kill", "phase": "Pending"}]}}
    extra = steps_without_demo(suite, ["gate-r2-pause"])
    assert [o["metadata"]["name"] for o in extra] == ["gate-r2-taken", "gate-r2-kill"]
    failed = demo("gate-r2-pause", "Failed", reason="BudgetExceeded", action="process-pause")
    doc = junit([failed, *extra])
    schema.validate(doc)
    suite_el = parse(doc).find("testsuite")
    assert suite_el is not None
    assert {k: suite_el.get(k) for k in ("tests", "failures", "skipped")} == {"tests": "3", "failures": "2",
                                                                              "skipped": "1"}
    cases = {c.get("name"): c for c in suite_el.iter("testcase")}
    taken = cases["tidb-cluster/gate-r2-taken"].find("failure")
    assert taken is not None and taken.get("type") == "NotCreated" and "already exists" in (taken.get("message") or "")
    skipped = cases["tidb-cluster/gate-r2-kill"].find("skipped")
    assert skipped is not None and skipped.get("message") == "not run: stopOnFailure: step pause failed"
    assert verdict([failed, *extra]) == EXIT["failed"] and verdict(extra[1:]) == EXIT["passed"]
