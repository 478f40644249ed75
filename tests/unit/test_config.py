import pytest
from pydantic import ValidationError

from chaosdemo.api.errors import PreflightFailed
from chaosdemo.api.settings import Settings
from chaosdemo.core.addresses import pd_url, service_of
from chaosdemo.service.leadership import Timing


def url(s: Settings, name: str, namespace: str, override: str = "") -> str:
    """The PD URL a run of these settings reaches (``run/state.py`` asks the same)."""
    return pd_url(s.pd_url_template, s.cluster_domain, name, namespace, override)


def test_settings_come_from_the_environment_with_a_prefix():
    s = Settings.from_env({"CHAOSDEMO_CLAUDE_MODEL": "claude-haiku-5-5", "CHAOSDEMO_POLL_SECONDS": "0.5",
                           "ANTHROPIC_API_KEY": "sk-ant-secret", "UNRELATED": "x"})
    assert s.claude_model == "claude-haiku-5-5" and s.poll_seconds == 0.5
    assert s.anthropic_api_key is not None and s.anthropic_api_key.get_secret_value() == "sk-ant-secret"


def test_the_api_key_never_shows_in_the_settings_text():
    s = Settings.from_env({"ANTHROPIC_API_KEY": "sk-ant-secret"})
    assert "sk-ant-secret" not in repr(s) and "sk-ant-secret" not in s.model_dump_json()


def test_an_empty_key_means_no_claude():
    assert Settings.from_env({"ANTHROPIC_API_KEY": ""}).anthropic_api_key is None


def test_pd_url_defaults_to_tidb_operators_service_and_the_spec_may_name_another_service_of_that_namespace():
    s = Settings()
    fqdn = "tidb-cluster.svc.cluster.local."  # the trailing dot: no DNS search domain is tried first
    assert url(s, "basic", "tidb-cluster") == f"http://basic-pd.{fqdn}:2379"
    for given in ("http://my-pd:2379/", "http://my-pd.tidb-cluster:2379", "http://my-pd.tidb-cluster.svc:2379",
                  "http://my-pd.tidb-cluster.svc.cluster.local:2379"):
        assert url(s, "basic", "tidb-cluster", given) == f"http://my-pd.{fqdn}:2379", given
    assert url(s, "basic", "tidb-cluster", "https://pd") == f"https://pd.{fqdn}"
    other = Settings.from_env({"CHAOSDEMO_CLUSTER_DOMAIN": "corp.example"})
    assert url(other, "basic", "tidb-cluster") == "http://basic-pd.tidb-cluster.svc.corp.example.:2379"
    assert url(other, "basic", "tidb-cluster", "http://pd:2379") == "http://pd.tidb-cluster.svc.corp.example.:2379"


def test_the_cluster_domain_is_a_dns_name():
    for bad in ("cluster.local/x", "a..b", "-a.b", "x" * 201, "Cluster.Local"):
        with pytest.raises(ValidationError):
            Settings.from_env({"CHAOSDEMO_CLUSTER_DOMAIN": bad})


def test_the_service_a_pd_url_reaches_is_named_only_for_the_target_namespace():
    assert service_of("http://basic-pd.tidb-cluster.svc.cluster.local.:2379", "tidb-cluster", "cluster.local") == \
        "basic-pd"
    assert service_of("http://basic-pd.tidb-cluster.svc:2379", "tidb-cluster", "cluster.local") == "basic-pd"
    for elsewhere in ("http://127.0.0.1:2379", "http://basic-pd.other.svc.cluster.local.:2379", "http://basic-pd:2379",
                      "http://a.b.tidb-cluster.svc:2379", "http://[::1", "http://tidb-cluster.svc:2379"):
        assert service_of(elsewhere, "tidb-cluster", "cluster.local") == "", elsewhere


@pytest.mark.parametrize("given", [
    "http://127.0.0.1:18999",  # an address, not a Service
    "http://pd.other-namespace:2379",  # another namespace's Service
    "http://pd.other-namespace.svc:2379",
    "http://metadata.google.internal",  # any other host
    "http://pd:2379/pd/api/v1/../../admin",  # a path
    "http://user:secret@pd:2379",  # credentials
    "http://pd:2379?x=1",
    "file:///etc/passwd",
    "http://pd:99999",
])
def test_a_pd_url_that_is_not_a_service_of_the_target_namespace_is_refused_before_any_request(given):
    with pytest.raises(PreflightFailed) as e:
        url(Settings(), "basic", "tidb-cluster", given)
    assert e.value.reason == "PDURLRefused"
    assert "must name a Service of namespace tidb-cluster" in e.value.message


def test_a_demo_may_target_its_own_namespace_and_others_only_when_the_operator_lists_them():
    assert Settings().may_target("tidb-cluster", "tidb-cluster")
    assert not Settings().may_target("tenant", "tidb-cluster")
    listed = Settings.from_env({"CHAOSDEMO_TARGET_NAMESPACES": "tidb-cluster, staging"})
    assert listed.may_target("tenant", "tidb-cluster") and listed.may_target("tenant", "staging")
    assert not listed.may_target("tenant", "prod")
    assert Settings.from_env({"CHAOSDEMO_TARGET_NAMESPACES": "*"}).may_target("tenant", "prod")


def test_the_leader_lease_lives_in_the_pods_namespace_unless_set():
    assert Settings.from_env({}).leader_namespace == "default"
    assert Settings.from_env({"POD_NAMESPACE": "chaosdemo-system"}).leader_namespace == "chaosdemo-system"
    both = {"POD_NAMESPACE": "chaosdemo-system", "CHAOSDEMO_LEADER_NAMESPACE": "ops"}
    assert Settings.from_env(both).leader_namespace == "ops"
    assert Settings.from_env({"CHAOSDEMO_LEADER_ELECTION": "false"}).leader_election is False


def test_leader_timings_keep_client_gos_proportions_and_refuse_a_leader_that_could_overlap():
    t = Timing.for_lease(15)
    assert (t.lease, t.renew_deadline, t.retry) == (15, 10, 2)
    with pytest.raises(ValueError, match="renew deadline < lease"):
        Timing(lease=10, renew_deadline=10, retry=2)


def test_a_crash_point_must_be_one_the_operator_has():
    assert Settings.from_env({"CHAOSDEMO_CRASH_AT": "after-inject"}).crash_at == "after-inject"
    with pytest.raises(ValueError, match="unknown crash point"):
        Settings.from_env({"CHAOSDEMO_CRASH_AT": "after-lunch"})


def test_a_demo_may_ask_only_for_the_models_the_administrator_allows():
    s = Settings.from_env({"CHAOSDEMO_CLAUDE_MODEL": "claude-sonnet-5-5",
                           "CHAOSDEMO_ALLOWED_MODELS": "claude-haiku-5-5, claude-opus-5"})
    assert s.may_use("") and s.may_use("claude-sonnet-5-5") and s.may_use("claude-opus-5")
    assert not s.may_use("claude-mythos-9") and not Settings().may_use("claude-opus-5"), "none allowed by default"
