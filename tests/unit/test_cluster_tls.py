"""TLS to a TidbCluster's PD and stores: real TLS servers on loopback that ask for a client certificate,
as PD and TiKV do with spec.tlsCluster.enabled, and certificates in tidb-operator's shape (openssl)."""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web

from chaosdemo.api.errors import Forbidden, PDUnavailable, PreflightFailed
from chaosdemo.clients.pd import PDClient
from chaosdemo.clients.tikv import StoreProbe
from chaosdemo.clients.tls import ClusterTLS
from chaosdemo_local.cluster.tidb_pki import client_secret, make_cluster_pki

CLUSTER, NS = "basic", "tidb"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    make_cluster_pki(d, CLUSTER, NS)
    make_cluster_pki(d, CLUSTER, NS, ca="other")  # another cluster's CA and client certificate
    return d


def tls_of(pki: Path, ca: str = "ca") -> ClusterTLS:
    return ClusterTLS.from_secret("tidb/x", client_secret(pki, CLUSTER, NS, ca=ca)["data"])


@asynccontextmanager
async def server(pki: Path, component: str) -> AsyncIterator[int]:
    """A TLS server with the component's certificate that requires a client certificate of the cluster's CA."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(pki / f"ca-{component}.crt", pki / f"ca-{component}.key")
    ctx.verify_mode = ssl.CERT_REQUIRED
    async def health(_: web.Request) -> web.Response:
        return web.json_response([{"name": "basic-pd-0", "health": True}])

    async def status(_: web.Request) -> web.Response:
        return web.Response(text="")

    app = web.Application()
    app.router.add_get("/pd/api/v1/health", health)
    app.router.add_get("/status", status)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


def run(pki: Path, component: str, body: Callable[[int], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        async with server(pki, component) as port:
            return await body(port)
    return asyncio.run(go())


async def health(port: int, tls: ClusterTLS | None, name: str | None) -> list[dict[str, Any]]:
    pd = PDClient(f"http://127.0.0.1:{port}", timeout=3)
    if tls is not None:
        pd.use_tls(tls.context, name)
    try:
        assert pd.base_url.startswith("https://" if tls else "http://")
        return await pd.health()
    finally:
        await pd.aclose()


def test_pd_is_read_over_tls_with_the_clusters_ca_and_client_certificate(pki: Path) -> None:
    tls = tls_of(pki)
    answer = run(pki, "pd", lambda port: health(port, tls, ClusterTLS.pd_name("basic-pd", NS)))
    assert answer == [{"name": "basic-pd-0", "health": True}]


@pytest.mark.parametrize(("ca", "name", "words"), [
    ("ca", "evil-pd.tidb.svc", "certificate"),  # PD's certificate does not name the host checked
    ("other", "basic-pd.tidb.svc", "certificate"),  # another CA: neither side trusts the other
])
def test_a_pd_whose_certificate_does_not_check_out_is_unavailable_with_why(pki: Path, ca: str, name: str,
                                                                            words: str) -> None:
    with pytest.raises(PDUnavailable) as e:
        run(pki, "pd", lambda port: health(port, tls_of(pki, ca), name))
    assert words in e.value.message.lower(), e.value.message


def test_a_client_without_a_certificate_is_refused_by_the_server(pki: Path) -> None:
    no_cert = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    with pytest.raises(PDUnavailable):
        run(pki, "pd", lambda port: health(port, ClusterTLS(no_cert, "none"), "basic-pd.tidb.svc"))
    with pytest.raises(PDUnavailable):  # plain http to a TLS-only port
        run(pki, "pd", lambda port: health(port, None, None))


def test_a_store_is_probed_over_tls_against_its_peer_name(pki: Path) -> None:
    async def ask(port: int, name_of: Callable[[str], str] | None) -> str:
        probe = StoreProbe(port=port, timeout=3)
        if name_of is not None:
            probe.use_tls(tls_of(pki).context, name_of)
        try:
            return await probe.ask("127.0.0.1", "basic-tikv-1")
        finally:
            await probe.aclose()

    assert run(pki, "tikv", lambda p: ask(p, lambda pod: ClusterTLS.store_name(pod, CLUSTER, NS))) == ""
    assert run(pki, "tikv", lambda p: ask(p, lambda pod: f"{pod}.other-tikv-peer.tidb.svc")) != ""
    assert run(pki, "tikv", lambda p: ask(p, None)) != "", "plain http gets no answer from a TLS-only port"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_a_client_secret_that_cannot_be_used_says_which_key(pki: Path) -> None:
    good = client_secret(pki, CLUSTER, NS)["data"]
    other = client_secret(pki, CLUSTER, NS, ca="other")["data"]
    for data, words in [
        (None, "holds no data"),
        ({k: v for k, v in good.items() if k != "tls.key"}, "has no tls.key"),
        ({**good, "ca.crt": "%%%"}, "ca.crt is not base64"),
        ({**good, "ca.crt": b64("not a certificate")}, "ca.crt is not a PEM certificate"),
        ({**good, "tls.key": other["tls.key"]}, "tls.crt and tls.key are not a PEM certificate and its key"),
        ({**good, "tls.crt": "A" * 100_000}, "larger than"),
    ]:
        with pytest.raises(ValueError, match=words):
            ClusterTLS.from_secret("tidb/basic-cluster-client-secret", data)


class StubKube:
    """Named as such: a Kubernetes client that answers the TidbCluster and the Secret from memory."""

    def __init__(self, tc: dict[str, Any], secret: dict[str, Any] | None, forbidden: bool = False) -> None:
        self.tc, self.secret, self.forbidden, self.reads = tc, secret, forbidden, []

    async def get_tidbcluster(self, namespace: str, name: str) -> dict[str, Any]:
        return self.tc

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads.append(f"{namespace}/{name}")
        if self.forbidden:
            raise Forbidden("HTTP 403")
        return self.secret


def state(kube: StubKube) -> Any:
    from chaosdemo.api.settings import Settings
    from chaosdemo.run.state import RunState

    pd = PDClient(f"http://{CLUSTER}-pd.{NS}.svc.cluster.local.:2379")
    probe = StoreProbe()
    rs = SimpleNamespace(deps=SimpleNamespace(kube=SimpleNamespace(cluster=kube), settings=Settings()),
                         demo=SimpleNamespace(cluster=CLUSTER, cluster_ns=NS), pd=pd, pd_url=pd.base_url,
                         observer=SimpleNamespace(probe=probe))
    rs.use_tls = lambda tls, name: RunState.use_tls(rs, tls, name)  # type: ignore[arg-type]
    return rs


TLS_TC = {"spec": {"tlsCluster": {"enabled": True}}}


def test_secure_reads_the_clusters_client_secret_only_when_the_cluster_asks_for_tls(pki: Path) -> None:
    from chaosdemo.run.cluster_tls import secure

    plain = StubKube({"spec": {}}, None)
    rs = state(plain)
    assert asyncio.run(secure(rs)) is None and plain.reads == [] and rs.pd_url.startswith("http://")

    kube = StubKube(TLS_TC, client_secret(pki, CLUSTER, NS))
    rs = state(kube)
    tls = asyncio.run(secure(rs))
    assert tls is not None and kube.reads == ["tidb/basic-cluster-client-secret"]
    assert rs.pd_url == "https://basic-pd.tidb.svc.cluster.local.:2379"
    assert rs.pd._server_hostname == "basic-pd.tidb.svc", "checked against the name the certificate carries"


@pytest.mark.parametrize(("kube", "words"), [
    (StubKube(TLS_TC, None, forbidden=True),
     "helm upgrade ... --set clusterTLS.clientSecrets={basic-cluster-client-secret}"),
    (StubKube(TLS_TC, None), "Secret tidb/basic-cluster-client-secret (ca.crt, tls.crt, tls.key, as tidb-operator "
                             "expects it), does not exist"),
    (StubKube(TLS_TC, {"data": {"ca.crt": b64("x")}}), "has no tls.crt"),
])
def test_a_tls_cluster_whose_client_certificate_cannot_be_had_is_refused_with_what_to_do(kube: StubKube,
                                                                                        words: str) -> None:
    from chaosdemo.run.cluster_tls import secure

    with pytest.raises(PreflightFailed) as e:
        asyncio.run(secure(state(kube)))
    assert e.value.reason == "ClusterTLS" and words in e.value.message, e.value.message
    assert "spec.tlsCluster.enabled" in e.value.message
