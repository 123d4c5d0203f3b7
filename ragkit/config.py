"""Pydantic base for component configs. Pipeline-level YAML loading builds on this."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ragkit.errors import ConfigError


class ComponentConfig(BaseModel):
    """Base of every component's config: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def secret_from_env(var: str | None, *, required: bool = True, what: str = "API key") -> SecretStr | None:
    """Read a secret from the environment variable named ``var``; the error names the variable, never a value."""
    if not var:
        if required:
            raise ConfigError(f"no environment variable named for the {what}")
        return None
    value = os.environ.get(var)
    if not value:
        if required:
            raise ConfigError(f"environment variable {var} is not set; it should hold the {what}")
        return None
    return SecretStr(value)


__all__ = ["ComponentConfig", "Field", "secret_from_env"]
