"""The action service's settings file (YAML): the cluster it acts on, its policy, who
holds which role, the static tokens, how long an approval lasts, and whom to tell.

>>> config = ServiceConfig.model_validate({"cluster": "prod", "policy": "policy.yaml"})
>>> config.approval_ttl, config.four_eyes, config.field_manager
(datetime.timedelta(seconds=3600), True, 'kubeopera-actions')
"""

from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kubeopera.actions.auth import Binding, StaticToken
from kubeopera.actions.policy import Policy, load_policy
from kubeopera.settings.durations import parse_duration
from kubeopera.settings.yaml_file import named_once, read_model


class ServiceConfigError(ValueError):
    """The settings file cannot be used; one line: ``FILE:LINE: FIELD: what``."""


class ServiceConfig(BaseModel):
    """``cluster``: the name the collector gives the cluster this service acts on (one
    service per cluster, as one collector); ``policy``: the policy file (relative to this
    file); ``bindings``: roles for users and groups; ``static_tokens``: hashed tokens for
    automation; ``approval_ttl``: how long an approval may wait for its apply;
    ``four_eyes``: whether a requester may not approve their own request;
    ``field_manager``: the name applied changes carry on the API server and the change
    timeline; ``subscriptions``: the alert subscriptions file whose PagerDuty receivers
    with ``change_events: true`` hear of every apply and undo."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cluster: str = Field(min_length=1, max_length=253)
    policy: Path
    bindings: list[Binding] = Field(default_factory=list)
    static_tokens: list[StaticToken] = Field(default_factory=list)
    approval_ttl: timedelta = timedelta(hours=1)
    four_eyes: bool = True
    field_manager: str = Field("kubeopera-actions", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    subscriptions: Path | None = None

    @field_validator("approval_ttl", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("static_tokens")
    @classmethod
    def _unique(cls, tokens: list[StaticToken]) -> list[StaticToken]:
        return named_once(tokens, "static token")


def load_service_config(path: Path) -> tuple[ServiceConfig, Policy]:
    """The settings at ``path`` with their policy (paths made relative to the file).
    Raises ``ServiceConfigError`` or ``policy.PolicyError``, one line each."""
    config, _ = read_model(path, ServiceConfig, ServiceConfigError)
    config = config.model_copy(
        update={
            "policy": _beside(path, config.policy),
            "subscriptions": config.subscriptions and _beside(path, config.subscriptions),
        }
    )
    return config, load_policy(config.policy)


def _beside(settings: Path, path: Path) -> Path:
    return path if path.is_absolute() else settings.parent / path
