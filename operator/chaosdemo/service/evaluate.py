"""``chaosdemo eval``: a diagnosis engine over the corpus of recorded cases, scored (core/scoring.py).

The rules engine runs in-process. Claude (or the local Anthropic-compatible stand-in, for the plumbing)
is the client the edge made, asked once per case with the same prompt a demo sends, one case at a time,
each timed and its tokens counted; a case it fails is scored as no answer, with the reason.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from chaosdemo.api.errors import ClaudeUnavailable
from chaosdemo.core.prompt import SYSTEM_PROMPT, build_user_prompt
from chaosdemo.core.rules import diagnose_by_rules
from chaosdemo.core.scoring import Case, Outcome, load_case

if TYPE_CHECKING:
    from chaosdemo.clients.claude import ClaudeDiagnoser

__all__ = ["ask_claude", "load_corpus", "run_rules"]


def load_corpus(path: Path) -> list[Case]:
    """Every ``*.json`` case under ``path``, by name; an unreadable case is an error naming its file."""
    files = sorted(path.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no cases (*.json) in {path}")
    cases = []
    for f in files:
        try:
            cases.append(load_case(json.loads(f.read_text())))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{f}: not a diagnosis case: {e}") from e
    return cases


def run_rules(cases: list[Case]) -> list[Outcome]:
    out = []
    for c in cases:
        t0 = time.perf_counter()
        answer = diagnose_by_rules(c.evidence)
        out.append(Outcome(c, answer, seconds=round(time.perf_counter() - t0, 4)))
    return out


async def ask_claude(cases: list[Case], claude: ClaudeDiagnoser, model: str,
                     say: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True)) -> list[Outcome]:
    out = []
    for i, c in enumerate(cases, 1):
        t0 = time.monotonic()
        try:
            answer, tokens = await claude.ask(model=model, system=SYSTEM_PROMPT, user=build_user_prompt(c.evidence))
        except ClaudeUnavailable as e:
            out.append(Outcome(c, None, seconds=round(time.monotonic() - t0, 3), error=f"{e.reason}: {e.message}"))
            say(f"[{i}/{len(cases)}] {c.id}: no answer ({e.reason})")
            continue
        out.append(Outcome(c, answer, seconds=round(time.monotonic() - t0, 3), tokens=tokens))
        say(f"[{i}/{len(cases)}] {c.id}: {answer.fault_class} ({time.monotonic() - t0:.1f}s)")
    return out
