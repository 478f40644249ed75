"""Claude, through the Anthropic SDK's structured output.

The SDK retries timeouts, 429 and 5xx itself (``max_retries``); what still
fails here becomes ``ClaudeUnavailable`` with a reason the status can show.
The client is created at the edge with the key and ``base_url`` from the
settings, so tests point it at a local Anthropic-compatible endpoint.
"""

from __future__ import annotations

import time

import anthropic
import pydantic

from chaosdemo.api.errors import ClaudeUnavailable
from chaosdemo.api.models import DiagnosisAnswer
from chaosdemo.clients.metrics import Metrics

__all__ = ["ClaudeDiagnoser"]


class ClaudeDiagnoser:
    def __init__(self, client: anthropic.AsyncAnthropic, *, max_tokens: int = 2048,
                 metrics: Metrics | None = None) -> None:
        self._client = client
        self._max_tokens = max_tokens
        self._metrics = metrics or Metrics()

    async def diagnose(self, *, model: str, system: str, user: str) -> DiagnosisAnswer:
        """Claude's structured answer, or ClaudeUnavailable with the reason; every call is counted and timed."""
        started = time.monotonic()
        try:
            answer, usage = await self.ask(model=model, system=system, user=user)
        except ClaudeUnavailable as e:
            self._metrics.claude(e.reason, time.monotonic() - started)
            raise
        self._metrics.claude("ok", time.monotonic() - started, usage[0], usage[1])
        return answer

    async def aclose(self) -> None:
        await self._client.close()

    async def ask(self, *, model: str, system: str, user: str) -> tuple[DiagnosisAnswer, tuple[int, int]]:
        """Claude's answer and its (input, output) tokens, or ClaudeUnavailable; not counted in the metrics."""
        try:
            resp = await self._client.messages.parse(
                model=model,
                max_tokens=self._max_tokens,
                system=system,
                messages=[{"role": "user", "content": user}],
                output_format=DiagnosisAnswer,
            )
        except anthropic.APITimeoutError as e:
            raise ClaudeUnavailable("Claude timed out after the SDK's retries", reason="ClaudeTimeout") from e
        except anthropic.RateLimitError as e:
            raise ClaudeUnavailable(
                "Claude rate-limited the request (429) after retries", reason="ClaudeRateLimited"
            ) from e
        except anthropic.AuthenticationError as e:
            raise ClaudeUnavailable("Claude refused the API key (401)", reason="ClaudeAuthFailed") from e
        except anthropic.APIStatusError as e:
            raise ClaudeUnavailable(
                f"Claude answered HTTP {e.status_code} after retries", reason="ClaudeAPIError"
            ) from e
        except anthropic.APIConnectionError as e:
            raise ClaudeUnavailable("Claude could not be reached", reason="ClaudeUnreachable") from e
        except (pydantic.ValidationError, ValueError) as e:
            if "answer out of bounds" in str(e):
                raise ClaudeUnavailable(f"Claude's answer was refused: {_bounds_problems(e)}",
                                        reason="ClaudeAnswerOutOfBounds") from e
            raise ClaudeUnavailable(
                f"Claude's answer did not match the diagnosis schema: {str(e)[:200]}",
                reason="ClaudeMalformedOutput",
            ) from e
        except anthropic.AnthropicError as e:
            raise ClaudeUnavailable(f"Claude call failed: {type(e).__name__}", reason="ClaudeError") from e
        if resp.stop_reason == "max_tokens":
            raise ClaudeUnavailable("Claude's answer was cut at max_tokens", reason="ClaudeTruncated")
        parsed = resp.parsed_output
        if parsed is None:
            raise ClaudeUnavailable("Claude returned no structured answer", reason="ClaudeMalformedOutput")
        usage = resp.usage
        return parsed, (int(getattr(usage, "input_tokens", 0) or 0), int(getattr(usage, "output_tokens", 0) or 0))


def _bounds_problems(e: Exception) -> str:
    """The bounds an answer broke, from the validation error that refused it."""
    text = str(e)
    return text[text.index("answer out of bounds: ") + len("answer out of bounds: "):].split("[type=")[0].strip()[:300]
