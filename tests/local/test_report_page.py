"""`kubectl chaosdemo report NAME -o html` on a real demo: one self-contained page, rendered by headless
Chromium (Debian's) to a PNG, and the picture checked: the lanes' bars where the status says they are."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from chaosdemo.api.timestamps import parse_iso
from chaosdemo.plugin.page import COLORS
from chaosdemo_local.cluster.env import LocalEnv
from chaosdemo_local.cluster.harness import Demos, Operator
from chaosdemo_local.picture import boxes, screenshot

from .test_plugin_and_metrics import kubectl_plugin

pytestmark = pytest.mark.local


def test_the_html_report_draws_who_saw_the_fault_when_as_the_status_says(
        local_env: LocalEnv, operator: Operator, demos: Demos, tmp_path: Path) -> None:
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed here (.ci/run installs it: apt-get install chromium)")
    operator.start()
    demos.apply("drawn", target={"pod": "basic-tikv-1"}, timeouts={"stabilitySeconds": 2})
    st = demos.wait("drawn")["status"]
    assert st["phase"] == "Succeeded", st.get("message")
    out = kubectl_plugin(local_env, "report", "drawn", "-n", demos.ns, "-o", "html")
    assert out.returncode == 0, out.stderr
    html = out.stdout
    assert "<script" not in html.lower(), "no script"
    assert not re.search(r"""(src|href)\s*=\s*["']?[a-z]+:|url\(""", html, re.I), "nothing fetched from anywhere"
    assert "Who saw it when" in html and "<svg" in html

    drawn = boxes(screenshot(html, tmp_path / "drawn.png"), COLORS)
    (ours,) = drawn["ours"]  # ChaosDemo's own lane: from its detection to its recovery
    assert drawn["fault"], "Kubernetes saw the pod go: its lane has a bar"
    assert drawn["stability"], "the stability window is shaded"
    # The scale of the picture, from our own bar; then the breach bar of the target must be where the status
    # says, to within 3 pixels (a pixel is about span/640 seconds).
    seen = {o["observer"]: o for o in st["observers"]}
    px_per_s = (ours[2] - ours[0]) / (seen["chaosdemo"]["sawEndSeconds"] - seen["chaosdemo"]["sawFaultSeconds"])
    zero = ours[0] - px_per_s * seen["chaosdemo"]["sawFaultSeconds"]
    # The longest breach lane (a lane draws each breach of one invariant on one subject): where it starts and ends.
    t0, spans = parse_iso(st["injectedAt"]), {}
    for v in st["violations"]:
        a, b = parse_iso(v["firstSeen"]) - t0, parse_iso(v["cleared"]) - t0
        lo, hi = spans.get((v["invariant"], v["subject"]), (a, b))
        spans[(v["invariant"], v["subject"])] = (min(lo, a), max(hi, b))
    start, end = max(spans.values(), key=lambda s: s[1] - s[0])
    assert (end - start) * px_per_s > 20, f"a breach long enough to measure in the picture: {spans}"
    left, right = zero + px_per_s * start, zero + px_per_s * end
    assert any(abs(b[0] - left) <= 3 and abs(b[2] - right) <= 3 for b in drawn["breach"]), \
        (drawn["breach"], left, right)
