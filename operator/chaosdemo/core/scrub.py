"""Text from the cluster, bounded and scrubbed of anything that looks like a credential (pure).

Everything the operator repeats of what the cluster said (a PD member's name, a store's state, an Event's
message) passes here before it reaches a status, an Event, a log line or a prompt.
"""

from __future__ import annotations

import re

__all__ = ["MAX_TEXT", "clip", "scrub"]

MAX_TEXT = 300

# Every pattern is linear in its text: no pattern starts with a repeat that another start could share
# (a token is matched only from the start of its run, ``(?<!...)``), and no two repeats stand side by side
# over the same characters. tests/unit/test_scrub.py scrubs 200,000 characters of hostile text of each kind.
_TOKEN = r"A-Za-z0-9_\-"
_SECRET_PATTERNS = [
    # a PEM private key, whole (or to the end of a truncated text)
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S),
    re.compile(rf"(?<![{_TOKEN}])sk-ant-[{_TOKEN}]+"),
    re.compile(r"(?i)\bauthorization\s*[=:]\s*(?:(?:bearer|basic|token|digest)\s+)?\S+"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]{8,}"),
    # a credential's name (the part before it stays: DB_[redacted]) and its value
    re.compile(r"(?i)(?:api[_-]?key|token|passw(?:or)?d|pwd|secret|credentials?|access[_-]?key|private[_-]?key)"
               r"\s*[=:]\s*\S+"),
    re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(rf"(?<![{_TOKEN}])eyJ[{_TOKEN}]{{10,}}\.[{_TOKEN}]+\.[{_TOKEN}]+"),  # a JWT
]


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def scrub(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` without anything that looks like a credential, in at most ``limit`` characters.

    Cut first, so the work is bounded by ``limit`` whatever the cluster sent (PD's member names, store
    states, Events' messages: all text a tenant's PD and pods control). What lies past the cut is never
    shown; a credential the cut splits is redacted if its name and any of its value are kept.
    """
    kept = text[:limit]
    for pat in _SECRET_PATTERNS:
        kept = pat.sub("[redacted]", kept)
    return clip(kept + ("…" if len(text) > limit else ""), limit)
