"""docs/ci/chaos-gate.yml, the CI recipe users copy, cannot run here (no GitHub, no registry): what it says
is checked against this repository instead. Its shell lines are read as data; the one shell edit it makes
to a sample (renaming it) is run here on every sample, with GNU sed as on GitHub's runners."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosdemo.plugin.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "docs" / "ci" / "chaos-gate.yml"


def recipe() -> dict[str, Any]:
    doc = yaml.safe_load(RECIPE.read_text())
    assert isinstance(doc, dict)
    return doc


def runs() -> str:
    return "\n".join(step.get("run", "") for step in recipe()["jobs"]["chaos"]["steps"])


def test_the_tidb_operator_it_installs_is_the_one_we_test_and_every_file_it_names_exists() -> None:
    env = recipe()["jobs"]["chaos"]["env"]
    ours = re.search(r'TIDB_OPERATOR_VERSION="\$\{TIDB_OPERATOR_VERSION:-(v[0-9.]+)\}"',
                     (REPO / "hack" / "demo-kind.sh").read_text())
    assert ours and env["TIDB_OPERATOR_VERSION"] == ours.group(1)
    kind = next(s for s in recipe()["jobs"]["chaos"]["steps"] if str(s.get("uses", "")).startswith("helm/kind"))
    named = {kind["with"]["config"], *re.findall(r"(?:deploy|charts)/[\w./-]+", runs())}
    assert named and all((REPO / n).exists() for n in named), sorted(n for n in named if not (REPO / n).exists())


def test_every_chart_value_it_sets_is_one_the_chart_has() -> None:
    values = yaml.safe_load((REPO / "charts" / "chaosdemo-operator" / "values.yaml").read_text())
    for key in re.findall(r"--set ([\w.]+)=", runs()):
        node: Any = values
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"the chart has no value {key}"
            node = node[part]


def plugin_lines() -> list[list[str]]:
    out = []
    for line in runs().splitlines():
        if "kubectl chaosdemo" not in line:
            continue
        command = re.split(r"\s(?:>|\|\|)\s", line.split("kubectl chaosdemo", 1)[1])[0]
        out.append(shlex.split(command.replace('"$RUN"', "x").replace('"${name#*/}"', "x")))
    return out


def test_every_kubectl_chaosdemo_line_parses_with_the_plugins_own_arguments() -> None:
    lines = plugin_lines()
    assert {line[0] for line in lines} == {"report"}
    for args in lines:
        parsed = build_parser().parse_args(args)
        assert parsed.command == "report"
    gate = [a for a in lines if a[0] == "report" and "junit" in a]
    assert gate and all("--suite" in a for a in gate), "the gate reports this run's suite"


@pytest.mark.skipif(shutil.which("sed") is None, reason="no sed on this machine to run the recipe's edit with")
def test_the_suite_it_runs_is_the_sample_renamed_the_way_the_recipe_does() -> None:
    """The recipe's sed renames the sample suite to the run's name; the steps, controls first and last, stay."""
    from chaosdemo.api.suite import ChaosDemoSuiteSpec

    text = runs()
    found = re.search(r'sed -e "(.*?)" (deploy/samples/\S+) \| kubectl apply -f -', text)
    assert found, "the recipe applies a sample suite under the run's name"
    expr, sample = found.group(1).replace("$RUN", "gate-1234567890"), found.group(2)
    renamed = subprocess.run(["sed", "-e", expr, str(REPO / sample)], capture_output=True, text=True, check=True)
    doc, original = yaml.safe_load(renamed.stdout), yaml.safe_load((REPO / sample).read_text())
    assert doc["kind"] == "ChaosDemoSuite" and doc["metadata"]["name"] == "gate-1234567890"
    assert doc["spec"] == original["spec"]
    actions = [step.fault.action for step in ChaosDemoSuiteSpec.model_validate(doc["spec"]).steps]
    assert actions.count("none") >= 2 and actions[0] == actions[-1] == "none", "controls before and after"
