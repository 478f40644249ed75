"""The SQL canary's credentials (issue 31): a Secret's user and password, bounded and checked, and the
preflight's refusals when the Secret cannot be read, is missing or is malformed. The Kubernetes API is a
stub here (named so): the admission and RBAC halves run on the local tier's real API server."""

from __future__ import annotations

import asyncio
import base64
from types import SimpleNamespace
from typing import Any

import pytest

from chaosdemo.api.errors import Forbidden, PreflightFailed
from chaosdemo.api.models import CanarySpec
from chaosdemo.core.canary_plan import MAX_SECRET_VALUE, credentials
from chaosdemo.run.felt import login


def b64(value: str | bytes) -> str:
    return base64.b64encode(value.encode() if isinstance(value, str) else value).decode()


def test_a_secret_gives_its_user_and_password_and_root_when_it_names_no_user() -> None:
    assert credentials("ns/s", {"user": b64("canary"), "password": b64("p w")}) == ("canary", "p w")
    assert credentials("ns/s", {"password": b64("")}) == ("root", "")


@pytest.mark.parametrize(("data", "words"), [
    ({"user": b64("canary")}, "has no password key"),
    ({"password": "***"}, "password is not base64"),
    ({"password": b64("x" * (MAX_SECRET_VALUE + 1))}, f"longer than {MAX_SECRET_VALUE} bytes"),
    ({"password": b64(b"\xff\xfe")}, "not UTF-8"),
    ({"user": b64("x'; DROP DATABASE y; --"), "password": b64("p")}, "is not a TiDB user name"),
    ({"user": b64("u" * 33), "password": b64("p")}, "is not a TiDB user name"),
    (None, "has no password key"),
])
def test_a_malformed_secret_is_refused_and_its_values_are_never_repeated(data: dict[str, Any] | None,
                                                                         words: str) -> None:
    with pytest.raises(ValueError, match=words) as e:
        credentials("ns/s", data)
    assert "DROP" not in str(e.value) and "xxxx" not in str(e.value) and "uuuu" not in str(e.value), "no value"


class StubSecrets:
    """A stub of the operator's Kubernetes client: one Secret, or a 403 for every read."""

    def __init__(self, secret: dict[str, Any] | None, forbidden: bool = False) -> None:
        self.secret, self.forbidden = secret, forbidden
        self.reads: list[tuple[str, str]] = []

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads.append((namespace, name))
        if self.forbidden:
            raise Forbidden(f"Kubernetes API refused to read Secret {namespace}/{name}: HTTP 403", reason="Forbidden")
        return self.secret


def deps(stub: StubSecrets) -> Any:
    return SimpleNamespace(kube=SimpleNamespace(cluster=stub))


def test_no_secret_named_means_root_with_no_password_and_no_secret_read() -> None:
    stub = StubSecrets(None)
    assert asyncio.run(login(deps(stub), CanarySpec(), "tidb")) == ("root", "")
    assert stub.reads == []


@pytest.mark.parametrize(("stub", "words"), [
    (StubSecrets(None, forbidden=True), "helm upgrade ... --set canary.credentialSecrets={login}"),
    (StubSecrets(None), "Secret tidb/login (spec.canary.credentialsSecret) does not exist"),
    (StubSecrets({"data": {"user": b64("canary")}}), "has no password key"),
])
def test_a_secret_that_cannot_be_used_is_refused_in_the_preflight_with_what_to_do(stub: StubSecrets,
                                                                                 words: str) -> None:
    with pytest.raises(PreflightFailed) as e:
        asyncio.run(login(deps(stub), CanarySpec(credentials_secret="login"), "tidb"))
    assert e.value.reason == "CanaryCredentials" and words in e.value.message, e.value.message
    assert stub.reads == [("tidb", "login")], "only the named Secret, in the TidbCluster's namespace"


def test_the_canary_is_on_by_default_as_root_with_pingcaps_budget() -> None:
    spec = CanarySpec()
    assert spec.enabled and spec.credentials_secret == ""
    b = spec.budget
    assert (b.max_unavailable_seconds, b.min_throughput_share, b.max_statement_seconds, b.serve_again_seconds) == \
        (20, 0.5, 2, 120)
