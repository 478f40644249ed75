"""The report page (pure): self-contained, everything from the cluster escaped, the timeline where it belongs."""

from __future__ import annotations

import datetime as dt
import re

from chaosdemo.plugin.page import COLORS, page, timeline_svg

from .test_plugin_views import T0, at, demo


def test_the_page_is_one_file_with_its_timeline_and_nothing_from_the_cluster_can_run() -> None:
    hostile = '<img src="http://evil/x"><script>alert(1)</script>'
    obj = demo("Succeeded", [{"invariant": "tikv-pods-ready", "subject": hostile, "message": hostile,
                              "firstSeen": "2026-11-25T08:00:01Z", "cleared": "2026-11-25T08:00:09Z"}],
               injectedAt=T0, detectedAt="2026-11-25T08:00:01Z", recoveredAt="2026-11-25T08:00:09Z",
               finishedAt="2026-11-25T08:00:20Z", message=hostile,
               observers=[{"observer": "pd", "what": hostile},
                          {"observer": "chaosdemo", "sawFaultSeconds": 1.0, "sawEndSeconds": 9.0}],
               diagnosis={"summary": hostile, "engine": "claude", "evidence": [hostile]})
    html = page(obj, [{"reason": "X", "message": hostile}], at(30))
    assert "<script" not in html and "<img" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?[a-z]+:|url\(""", html, re.I)
    assert html.count("<svg") == 1 and COLORS["ours"] in html and COLORS["breach"] in html


def test_before_the_injection_there_is_no_timeline_and_an_open_bar_runs_to_now() -> None:
    assert timeline_svg({"phase": "Pending"}, {}, at(0)) == ""
    svg = timeline_svg({"injectedAt": T0, "observers": [{"observer": "chaosdemo", "sawFaultSeconds": 2.0}]}, {},
                       dt.datetime(2026, 11, 25, 8, 0, 10, tzinfo=dt.UTC))
    assert "+2.00 s to the end" in svg
