"""Operator configuration, typed and read from the environment (prefix CHAOSDEMO_).

The Anthropic API key is read from ANTHROPIC_API_KEY (set from a Secret in the
Deployment) and kept as a SecretStr so it never reaches status, events or logs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, Field, SecretStr

__all__ = ["Settings"]

_PREFIX = "CHAOSDEMO_"


class Settings(BaseModel):
    claude_model: str = Field(default="claude-sonnet-5-5", description="Default Claude model.")
    anthropic_api_key: SecretStr | None = Field(default=None, description="From ANTHROPIC_API_KEY.")
    anthropic_base_url: str | None = Field(default=None, description="From ANTHROPIC_BASE_URL.")
    claude_timeout_seconds: float = Field(default=60.0, gt=0)
    claude_max_retries: int = Field(default=2, ge=0)
    claude_max_tokens: int = Field(default=2048, ge=256)
    diagnosis_settle_seconds: float = Field(
        default=10.0, ge=0, description="Evidence gathered after detection before diagnosing."
    )
    pd_url_template: str = Field(
        default="http://{name}-pd.{namespace}.svc:2379",
        description="PD URL when spec.cluster.pdURL is empty; {name} and {namespace} are filled in.",
    )
    pd_timeout_seconds: float = Field(default=3.0, gt=0)
    poll_seconds: float = Field(
        default=2.0, gt=0, description="Longest wait between two looks at the cluster."
    )
    heartbeat_stale_seconds: float = Field(default=15.0, gt=0)
    docker_host: str | None = Field(default=None, description="From DOCKER_HOST.")
    events_limit: int = Field(default=40, ge=0)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for name in cls.model_fields:
            key = _PREFIX + name.upper()
            if key in env and env[key] != "":
                values[name] = env[key]
        if env.get("ANTHROPIC_API_KEY"):
            values["anthropic_api_key"] = env["ANTHROPIC_API_KEY"]
        if env.get("ANTHROPIC_BASE_URL"):
            values["anthropic_base_url"] = env["ANTHROPIC_BASE_URL"]
        if env.get("DOCKER_HOST"):
            values["docker_host"] = env["DOCKER_HOST"]
        return cls.model_validate(values)

    def pd_url(self, name: str, namespace: str, override: str = "") -> str:
        if override:
            return override.rstrip("/")
        return self.pd_url_template.format(name=name, namespace=namespace).rstrip("/")
