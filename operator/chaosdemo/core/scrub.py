"""Text from the cluster, bounded and scrubbed of anything that looks like a credential (pure).

Everything the operator repeats of what the cluster said (a PD member's name, a store's state, an Event's
message) passes here before it reaches a status, an Event, a log line or a prompt.
"""

from __future__ import annotations

import re

__all__ = ["MAX_TEXT", "clip", "scrub"]

MAX_TEXT = 300

_SECRET_PATTERNS = [
    # a PEM private key, whole (or to the end of a truncated text)
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S),
    re.compile(r"sk-ant-[A-Za-z0-9_\-]+"),
    re.compile(r"(?i)\bauthorization\s*[=:]\s*(?:bearer|basic|token|digest)?\s*\S+"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]{8,}"),
    re.compile(r"(?i)[\w-]*(api[_-]?key|token|passw(or)?d|pwd|secret|credentials?|access[_-]?key|private[_-]?key)"
               r"\s*[=:]\s*\S+"),
    re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+"),
]


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def scrub(text: str, limit: int = MAX_TEXT) -> str:
    for pat in _SECRET_PATTERNS:
        text = pat.sub("[redacted]", text)
    return clip(text, limit)
