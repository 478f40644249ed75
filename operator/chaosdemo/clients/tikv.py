"""Each TiKV store asked directly, on its own status port: does it answer?

A stopped TiKV process keeps its sockets, so the kernel still accepts the connection and nothing ever
answers; a TiKV cut off from PD keeps answering here while PD stops hearing it. The address is the
pod's IP as Kubernetes reports it (never an address PD hands out), and the answer's body is read only
up to a small bound and never kept: what a probe yields is "answered" or why not, in a few words.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Mapping

import aiohttp

from chaosdemo.clients.pd import failure, pd_session, phrase

__all__ = ["StoreProbe"]

MAX_BODY = 64 * 2**10


class StoreProbe:
    def __init__(self, session: aiohttp.ClientSession | None = None, *, port: int = 20180,
                 timeout: float = 0.5) -> None:
        """``session``: shared with the PD clients and not closed here; None: one of its own."""
        self.port, self.timeout = port, timeout
        self._session, self._owned = session, session is None
        self._tls: tuple[ssl.SSLContext, Callable[[str], str]] | None = None

    def use_tls(self, context: ssl.SSLContext, name_of: Callable[[str], str]) -> None:
        """Ask over https with ``context``; a store's certificate is checked against ``name_of(pod)``."""
        self._tls = context, name_of

    async def aclose(self) -> None:
        if self._owned and self._session is not None:
            await self._session.close()

    async def ask(self, ip: str, pod: str = "") -> str:
        """'' when the store answered ``GET /status`` with 200 within the timeout, else why not."""
        if self._session is None:
            self._session = pd_session()
        host = f"[{ip}]" if ":" in ip else ip
        scheme, tls, name = "http", True, None  # type: tuple[str, ssl.SSLContext | bool, str | None]
        if self._tls is not None:
            scheme, tls, name = "https", self._tls[0], self._tls[1](pod)
        try:
            async with self._session.get(f"{scheme}://{host}:{self.port}/status", allow_redirects=False,
                                         ssl=tls, server_hostname=name,
                                         timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                await resp.content.read(MAX_BODY)
                status = resp.status
        except TimeoutError:
            return f"no answer from {host}:{self.port}/status within {self.timeout:g}s"
        except aiohttp.ClientSSLError as e:
            return f"{host}:{self.port}/status failed: {failure(e)}"
        except (aiohttp.ClientError, ValueError, OSError) as e:
            return f"{host}:{self.port}/status failed: {type(e).__name__}"
        return "" if status == 200 else f"{host}:{self.port}/status answered HTTP {status} {phrase(status)}".rstrip()

    async def ask_all(self, ips: Mapping[str, str]) -> dict[str, str]:
        """Each name's answer (see ``ask``), asked at once."""
        names = sorted(ips)
        answers = await asyncio.gather(*(self.ask(ips[n], n) for n in names))
        return dict(zip(names, answers, strict=True))
