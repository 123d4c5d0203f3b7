"""The base of every component's config, and secrets read from environment variables. A leaf: imports only errors."""

from __future__ import annotations

import os
import re
import typing
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from ragkit.errors import ConfigError

# POSIX-style environment variable names; anything else (a pasted key, say) is refused without being echoed.
ENV_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def _numbers_only(annotation: Any) -> bool:
    args = [a for a in typing.get_args(annotation) if a is not type(None)] if typing.get_args(annotation) else [annotation]
    return bool(args) and all(a in (int, float) for a in args)


def _env_var_name(value: str) -> str:
    if not ENV_VAR_NAME.match(value):
        # Never echo the value: it may be a pasted secret.
        raise ValueError("expected the NAME of an environment variable (letters, digits, underscores, not starting "
                         "with a digit), not the secret itself")
    return value


EnvVarName = Annotated[str, AfterValidator(_env_var_name)]


class ComponentConfig(BaseModel):
    """Base of every component's config: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # YAML reads yes/no/on/off as booleans, and pydantic would take True as 1.
        if isinstance(value, bool) and info.field_name and _numbers_only(cls.model_fields[info.field_name].annotation):
            raise ValueError(f"expected a number, got the boolean {str(value).lower()} (YAML reads yes/no/on/off as booleans)")
        return value


def secret_from_env(var: str | None, *, required: bool = True, what: str = "API key") -> SecretStr | None:
    """Read a secret from the environment variable named ``var``; the error names the variable, never a value."""
    if not var:
        if required:
            raise ConfigError(f"no environment variable named for the {what}")
        return None
    if not ENV_VAR_NAME.match(var):
        raise ConfigError(
            f"the {what} must be given as the name of an environment variable (letters, digits, "
            "underscores), not as the value itself"
        )
    value = os.environ.get(var)
    if not value:
        if required:
            raise ConfigError(f"environment variable {var} is not set; it should hold the {what}")
        return None
    return SecretStr(value)


__all__ = ["ComponentConfig", "Field", "secret_from_env", "ENV_VAR_NAME", "EnvVarName"]
