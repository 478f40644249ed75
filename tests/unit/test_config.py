from chaosdemo.config import Settings


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


def test_pd_url_defaults_to_tidb_operators_service_and_the_spec_overrides_it():
    s = Settings()
    assert s.pd_url("basic", "tidb-cluster") == "http://basic-pd.tidb-cluster.svc:2379"
    assert s.pd_url("basic", "tidb-cluster", "http://pd.example:2379/") == "http://pd.example:2379"
