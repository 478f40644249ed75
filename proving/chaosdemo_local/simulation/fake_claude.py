"""A local Anthropic-compatible Messages endpoint for tests: a stand-in, not Claude.

It answers ``POST /v1/messages`` the way the API does for structured output
(a text block holding JSON that follows ``output_config.format.schema``), and
it refuses requests the real API would refuse (no key, no model, a schema
object without ``additionalProperties: false``). Tests steer it through
``POST /_control``: which answer to give, or which failure to act out
(``timeout``, ``429``, ``500``, ``malformed``); ``GET /_requests`` shows what it
was sent, so a test can check the prompt, and each request's outcome (``answered``,
``dropped by the caller`` when the caller hung up while it was slow).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

__all__ = ["build_app", "check_schema"]


def check_schema(schema: Any, path: str = "$") -> list[str]:
    """Objects must forbid additional properties, as the real structured-output API requires."""
    problems: list[str] = []
    if isinstance(schema, dict):
        if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
            problems.append(f"{path}: object schema without additionalProperties: false")
        for key, value in schema.items():
            problems += check_schema(value, f"{path}.{key}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            problems += check_schema(value, f"{path}[{i}]")
    return problems


# What the stand-in says when no test set an answer: a valid answer that diagnoses nothing, so that
# `make eval` proves the plumbing (prompt, schema, parsing, tokens, scoring) and nothing about Claude.
STANDIN_ANSWER = {
    "summary": "STAND-IN, not Claude: no diagnosis was made.", "root_cause": "This endpoint is a local stand-in.",
    "fault_class": "unknown", "affected_pod": "", "affected_store": "", "affected_node": "", "confidence": 0.0,
    "evidence": [], "cited_evidence": [], "recommended_actions": []}


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"type": "error", "error": {"type": kind, "message": message}},
                             status=status, headers=headers)


async def _answer(req: web.Request, state: dict[str, Any], body: dict[str, Any],
                  record: dict[str, Any]) -> web.Response:
    """As the API answers a well-formed request, or fails it, in the mode a test set (``/_control``)."""
    mode = state["mode"]
    if mode == "429":
        return _error(429, "rate_limit_error", "Number of requests has exceeded your rate limit",
                      {"retry-after": "0", "retry-after-ms": "10"})
    if mode == "500":
        return _error(500, "api_error", "Internal server error")
    if mode == "timeout":
        # Slow, but watching the connection: a caller that gives up (cancels, closes) is recorded as
        # such at once, so a test can wait for that instead of for the delay.
        until = asyncio.get_running_loop().time() + float(state["delay"] or 30)
        while asyncio.get_running_loop().time() < until:
            if req.transport is None or req.transport.is_closing():
                record["outcome"] = "dropped by the caller"
                return web.Response(status=499)
            await asyncio.sleep(0.05)
    record["outcome"] = "answered"
    text = "{\"summary\": \"truncated" if mode == "malformed" else json.dumps(state["answer"] or STANDIN_ANSWER)
    return web.json_response({
        "id": f"msg_local{len(state['requests']):06d}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": len(json.dumps(body)) // 4, "output_tokens": len(text) // 4},
    })


def build_app() -> web.Application:
    state: dict[str, Any] = {"mode": "answer", "answer": None, "delay": 0.0, "requests": []}
    routes = web.RouteTableDef()

    @routes.post("/_control")
    async def control(req: web.Request) -> web.Response:
        body = await req.json()
        state.update({k: v for k, v in body.items() if k in ("mode", "answer", "delay")})
        if body.get("reset"):
            state["requests"] = []
        return web.json_response({"mode": state["mode"]})

    @routes.get("/_requests")
    async def requests(req: web.Request) -> web.Response:
        return web.json_response(state["requests"])

    @routes.post("/v1/messages")
    async def messages(req: web.Request) -> web.Response:
        body = await req.json()
        # The SDK sends the key as x-api-key or, from 2.x, as a bearer token.
        has_key = bool(req.headers.get("x-api-key")) or req.headers.get("authorization", "").startswith("Bearer ")
        record = {
            "body": body,
            "hasApiKey": has_key,
            "anthropicVersion": req.headers.get("anthropic-version", ""),
            "outcome": "pending",
        }
        state["requests"].append(record)
        if not has_key:
            return _error(401, "authentication_error", "an API key is required")
        if not body.get("model") or not body.get("max_tokens") or not body.get("messages"):
            return _error(400, "invalid_request_error", "model, max_tokens and messages are required")
        fmt = (body.get("output_config") or {}).get("format") or {}
        if fmt.get("type") != "json_schema" or ("schema" in fmt and check_schema(fmt["schema"])):
            return _error(400, "invalid_request_error",
                          f"output_config.format must be a strict json_schema: {check_schema(fmt.get('schema'))}")
        return await _answer(req, state, body, record)

    app = web.Application()
    app.add_routes(routes)
    return app


def main(host: str, port: int) -> None:
    web.run_app(build_app(), host=host, port=port, print=None, access_log=None)
