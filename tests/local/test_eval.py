"""`make eval` end to end on a corpus made here: the rules engine in-process, and the Claude path through
the SDK against the local Anthropic-compatible STAND-IN (a real HTTP endpoint; no key, no Claude here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ..unit.test_scoring import KILL, case, pod

REPO = Path(__file__).resolve().parents[2]


def write_corpus(path: Path, injected: dict[str, object]) -> Path:
    path.mkdir()
    (path / "kill.json").write_text(json.dumps(case("kill", injected, pod("basic-tikv-1", deleting=True),
                                                    pod("basic-tikv-1", uid="u2"))))
    (path / "control.json").write_text(json.dumps(case("control", None)))
    return path


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**clean, **env})


def test_make_eval_scores_the_rules_and_proves_the_claude_plumbing_on_the_stand_in(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", KILL)
    done = run("-m", "chaosdemo_local.cli", "eval", "--corpus", str(corpus), "--min-graded", "1.0")
    assert done.returncode == 0, done.stdout + done.stderr
    rules, standin = done.stdout.split("==> ANTHROPIC_API_KEY is not set", 1)
    assert "| **overall** | 2 | 100% | 100% | 100% | 100% | 100% |" in rules
    assert "engine: STAND-IN, not Claude" in standin and "| **overall** | 2 | 0% |" in standin
    assert "tokens per case:" in standin, "the answers came back through the SDK, with their usage"


def test_eval_exits_non_zero_below_the_users_threshold(tmp_path: Path) -> None:
    # The same evidence, recorded as if a container-kill had been injected: the rules engine's pod-failure
    # is then graded wrong, and 50% is below the 90% asked for.
    corpus = write_corpus(tmp_path / "corpus", {**KILL, "action": "container-kill", "expectedClass": "container-crash"})
    done = run("-m", "chaosdemo", "eval", "--engine", "rules", "--corpus", str(corpus), "--min-graded", "0.9")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "graded 50.0% < --min-graded 90.0%" in done.stderr
    missing = run("-m", "chaosdemo", "eval", "--engine", "claude", "--corpus", str(corpus))
    assert missing.returncode == 2 and "needs ANTHROPIC_API_KEY" in missing.stderr
