"""PD's HTTP API, read through an injected aiohttp session.

Only what the invariants and the evidence need. Every failure to get a JSON
answer becomes ``PDUnavailable`` with the URL and the cause: the status code
and its standard reason phrase, never the body of an answer that is not PD's
(it could be anything, and it would reach status, events and the prompt).
Redirects are not followed, and an answer is read only up to ``max_body`` bytes
(``CHAOSDEMO_PD_MAX_BODY_BYTES``): a Service of the target namespace that streams
without end costs the operator at most that, never its memory.

Every demo's PDClient shares the operator's one session (``pd_session``):
its connection pool is keyed by host, so 30 demos on 30 PDs cost one lookup
per request. aiohttp, not httpx: a look at the cluster is six PD requests,
and each took 0.9 ms of CPU in httpx against about 0.1 ms here, on the one
event loop every demo shares; an httpx client also took 45 ms and 0.9 MiB to
create (its TLS context), which was 1.4 s of blocked loop with 30 demos.
"""

from __future__ import annotations

import asyncio
import http
import json
import ssl
import time
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from chaosdemo.api.errors import PDLeaderless, PDUnavailable

__all__ = ["LEADERLESS", "MAX_BODY", "PDClient", "failure", "pd_session", "phrase"]

# What a PD follower answers while it knows no leader, as PD's redirector writes it (tikv/pd
# pkg/utils/apiutil/serverapi/middleware.go: 503 "no leader"; 500 when the leader it names does not answer).
# Compared whole, never copied: the status says it in the operator's words.
LEADERLESS = frozenset({b"no leader", b"redirect failed", b"redirect to not leader"})
# A connection refused or dropped is tried again this many times, 0.2 s apart, as PD's own clients do: while
# a PD pod goes (a restart, a leader move), its Service may still send it a connection for a second or so.
RETRIES = 2
# Real PD's /health asks every member in turn, 3 s each (``CheckHealth``'s clientTimeout): with one of them
# dead it takes 3 s more, so the read of it is given that much more per member beyond the first.
MEMBER_CHECK_SECONDS = 3.0
MAX_BODY = 8 * 2**20  # a real PD's largest answer we read (a region check of a large cluster) is far below
CHUNK = 64 * 2**10


def pd_session() -> aiohttp.ClientSession:
    """The session every PDClient of the operator shares (call inside the event loop)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, limit_per_host=8))


def failure(e: BaseException) -> str:
    """Why a request failed, in words: a TLS refusal says what was refused, not the connection's internals."""
    if isinstance(e, aiohttp.ClientConnectorCertificateError):
        err = e.certificate_error
        return f"TLS: the server's certificate was refused ({getattr(err, 'verify_message', '') or err})"
    if isinstance(e, aiohttp.ClientSSLError):
        return f"TLS: {getattr(e.os_error, 'reason', None) or e.os_error}"
    return repr(e)


def phrase(code: int) -> str:
    try:
        return http.HTTPStatus(code).phrase
    except ValueError:
        return ""


class PDClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 3.0,
        session: aiohttp.ClientSession | None = None,
        max_body: int = MAX_BODY,
    ) -> None:
        """``session``: shared with other PDClients and not closed here; None: one of its own."""
        self.base_url, self.max_body = base_url.rstrip("/"), max_body
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._owned = session is None
        self._ssl: ssl.SSLContext | bool = True  # aiohttp's default: https verified against the system's CAs
        self._server_hostname: str | None = None
        # PD's Date header minus our clock when the last /stores answer arrived (None: none, or no usable
        # header): PD stamps heartbeats on its own clock (``core.snapshot.pd_clock_ahead``).
        self.stores_date_ahead: float | None = None
        self.members_seen = 1  # PD's members in its last /health answer (at most 7 counted)

    def use_tls(self, context: ssl.SSLContext, server_hostname: str | None) -> None:
        """Speak TLS with ``context`` (the cluster's CA and client certificate), checking the server's
        certificate against ``server_hostname`` (None: the URL's host). The URL's scheme becomes https."""
        if self.base_url.startswith("http://"):
            self.base_url = "https://" + self.base_url[len("http://"):]
        self._ssl, self._server_hostname = context, server_hostname

    async def aclose(self) -> None:
        if self._owned and self._session is not None:
            await self._session.close()

    async def _get(self, path: str, shape: type[dict[str, Any]] | type[list[Any]],
                   limit: aiohttp.ClientTimeout | None = None) -> Any:
        if self._session is None:
            self._session = pd_session()
        for attempt in range(RETRIES + 1):
            try:
                async with self._session.get(self.base_url + path, timeout=limit or self._timeout,
                                             allow_redirects=False, ssl=self._ssl,
                                             server_hostname=self._server_hostname) as resp:
                    arrived, date = time.time(), resp.headers.get("Date", "")
                    status = resp.status
                    body = await self._read(resp, path) if status == 200 else b""
                    leaderless = status in (500, 503) and (await resp.content.read(64)).strip() in LEADERLESS
                break
            except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError) as e:
                if attempt < RETRIES and not isinstance(e, aiohttp.ClientConnectorCertificateError):
                    await asyncio.sleep(0.2)  # the Service may still send this one to a PD pod that is going
                    continue
                raise PDUnavailable(f"PD at {self.base_url} did not answer {path}: {failure(e)}") from e
            except (aiohttp.ClientError, TimeoutError, ValueError) as e:
                raise PDUnavailable(f"PD at {self.base_url} did not answer {path}: {failure(e)}") from e
        if leaderless:
            raise PDLeaderless(f"PD at {self.base_url} answered {path} with HTTP {status} {phrase(status)}: the "
                               "member asked knows no PD leader (PD is electing one)")
        if status != 200:
            raise PDUnavailable(f"PD at {self.base_url} answered {path} with HTTP {status} {phrase(status)}".rstrip())
        try:
            result = json.loads(body)
        except ValueError as e:
            raise PDUnavailable(f"PD at {self.base_url} sent non-JSON for {path}") from e
        except RecursionError as e:  # [[[[...: no answer of PD's nests like that
            raise PDUnavailable(f"PD at {self.base_url} sent JSON nested too deep for {path}") from e
        if not isinstance(result, shape):
            raise self._unexpected(path, f"a JSON {type(result).__name__}, not a JSON {shape.__name__}")
        if path.endswith("/stores"):
            stamped = _date(date)
            self.stores_date_ahead = None if stamped is None else stamped - arrived
        return result

    async def _read(self, resp: aiohttp.ClientResponse, path: str) -> bytes:
        """The body, read a chunk at a time and given up past ``max_body`` bytes (the connection is dropped)."""
        too_big = PDUnavailable(f"PD at {self.base_url} sent more than {self.max_body} bytes for {path} "
                                "(the limit, CHAOSDEMO_PD_MAX_BODY_BYTES)")
        if resp.content_length is not None and resp.content_length > self.max_body:
            raise too_big
        chunks, size = [], 0
        async for chunk in resp.content.iter_chunked(CHUNK):
            size += len(chunk)
            if size > self.max_body:
                raise too_big
            chunks.append(chunk)
        return b"".join(chunks)

    def _unexpected(self, path: str, what: str) -> PDUnavailable:
        return PDUnavailable(f"PD at {self.base_url} sent an answer PD does not give for {path}: {what}")

    async def stores(self) -> dict[str, Any]:
        path = "/pd/api/v1/stores"
        result: dict[str, Any] = await self._get(path, dict)
        entries = result.get("stores") or []
        if not isinstance(entries, list) or not all(_store_entry(e) for e in entries):
            raise self._unexpected(path, "stores is not a list of {store, status} objects with numeric counters")
        return result

    async def health(self) -> list[dict[str, Any]]:
        path = "/pd/api/v1/health"
        total = (self._timeout.total or 0) + MEMBER_CHECK_SECONDS * (self.members_seen - 1)
        result: list[dict[str, Any]] = await self._get(path, list, aiohttp.ClientTimeout(total=total))
        if not all(isinstance(m, dict) for m in result):
            raise self._unexpected(path, "not a list of members")
        self.members_seen = max(1, min(len(result), 7))
        return result

    async def members(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._get("/pd/api/v1/members", dict)
        return result

    async def replication(self) -> dict[str, Any]:
        path = "/pd/api/v1/config/replicate"
        result: dict[str, Any] = await self._get(path, dict)
        if not _numbers(result, ("max-replicas",)):
            raise self._unexpected(path, "max-replicas is not a number")
        return result

    async def region_check(self, check: str) -> dict[str, Any]:
        path = f"/pd/api/v1/regions/check/{check}"
        result: dict[str, Any] = await self._get(path, dict)
        if not _numbers(result, ("count",)):
            raise self._unexpected(path, "count is not a number")
        return result


def _date(header: str) -> float | None:
    """An HTTP Date header as epoch seconds, or None."""
    try:
        return parsedate_to_datetime(header[:64]).timestamp() if header else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _numbers(obj: dict[str, Any], keys: tuple[str, ...]) -> bool:
    return all(isinstance(obj.get(k, 0), int) and not isinstance(obj.get(k, 0), bool) for k in keys)


def _store_entry(entry: object) -> bool:
    if not isinstance(entry, dict):
        return False
    store, status = entry.get("store", {}), entry.get("status", {})
    return (isinstance(store, dict) and isinstance(status, dict) and _numbers(store, ("id", "last_heartbeat"))
            and _numbers(status, ("leader_count", "region_count")))
