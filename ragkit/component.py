"""The base of every component's config, and secrets read from environment variables. A leaf: imports only errors.

Secrets are held as ``SecretStr``; every value ``secret_from_env`` hands out is also remembered (in this process
only) so that ``scrub`` and ``SecretFilter`` can take it out of any message or log line that picked it up.
"""

from __future__ import annotations

import logging
import math
import os
import re
import typing
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from ragkit.errors import ConfigError

# POSIX-style environment variable names; anything else (a pasted key, say) is refused without being echoed.
ENV_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# How common API keys and tokens begin (those made only of letters, digits and underscores pass ENV_VAR_NAME).
_KEY_PREFIXES = ("sk_", "AIza", "ghp_", "gho_", "ghu_", "ghs_", "github_pat_", "hf_", "gsk_", "xai_", "AKIA", "ASIA")
# A secret is never shorter than this; shorter values are not scrubbed (they would match ordinary words).
MIN_SCRUBBED = 8
REDACTED = "[redacted]"
_SECRETS: set[str] = set()


def looks_like_secret(value: str) -> bool:
    """Whether ``value`` reads like a key or token rather than a variable name (a known prefix, or a long run of
    mixed letters and digits with no underscore, which variable names rarely are)."""
    if value.startswith(_KEY_PREFIXES):
        return True
    if len(value) < 20 or "_" in value or not any(c.isdigit() for c in value):
        return False
    mixed = any(c.islower() for c in value) and any(c.isupper() for c in value)
    return mixed or sum(c.isdigit() for c in value) >= 4


def _numbers_only(annotation: Any) -> bool:
    args = (
        [a for a in typing.get_args(annotation) if a is not type(None)] if typing.get_args(annotation) else [annotation]
    )
    return bool(args) and all(a in (int, float) for a in args)


_NOT_A_NAME = (
    "expected the NAME of an environment variable (letters, digits, underscores, not starting with a digit), "
    "not the secret itself"
)


def _env_var_name(value: str) -> str:
    # Never echo the value: it may be a pasted secret.
    if not ENV_VAR_NAME.match(value):
        raise ValueError(_NOT_A_NAME)
    if looks_like_secret(value):
        raise ValueError(_NOT_A_NAME + "; this looks like a key (if it is a variable name, rename it UPPER_SNAKE_CASE)")
    return value


EnvVarName = Annotated[str, AfterValidator(_env_var_name)]


def _server_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL with a host, e.g. http://127.0.0.1:8080/v1")
    return value


ServerUrl = Annotated[str, AfterValidator(_server_url)]


class ComponentConfig(BaseModel):
    """Base of every component's config: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if not info.field_name or not _numbers_only(cls.model_fields[info.field_name].annotation):
            return value
        # YAML reads yes/no/on/off as booleans, and pydantic would take True as 1.
        if isinstance(value, bool):
            raise ValueError(
                f"expected a number, got the boolean {str(value).lower()} (YAML reads yes/no/on/off as booleans)"
            )
        # A NaN fails every bound with a message about the bound, not about the value.
        if isinstance(value, float) and math.isnan(value):
            raise ValueError("expected a number, got NaN (.nan)")
        return value


def secret_name(var: str) -> str:
    """How a message may name the variable ``var``: by name, unless the name itself might be a secret."""
    return var if ENV_VAR_NAME.match(var) and not looks_like_secret(var) else "(the one named in the config)"


def secret_from_env(var: str | None, *, required: bool = True, what: str = "API key") -> SecretStr | None:
    """Read a secret from the environment variable named ``var``; the error names the variable, never a value."""
    if not var:
        if required:
            raise ConfigError(f"no environment variable named for the {what}")
        return None
    if not ENV_VAR_NAME.match(var) or looks_like_secret(var):
        raise ConfigError(
            f"the {what} must be given as the name of an environment variable (letters, digits, "
            "underscores), not as the value itself"
        )
    value = os.environ.get(var)
    if not value:
        if required:
            raise ConfigError(f"environment variable {secret_name(var)} is not set; it should hold the {what}")
        return None
    if len(value) >= MIN_SCRUBBED:
        _SECRETS.add(value)
    return SecretStr(value)


def scrub(text: str) -> str:
    """``text`` without any secret this process has read (longest first, so no part of one is left)."""
    for value in sorted(_SECRETS, key=len, reverse=True):
        if value in text:
            text = text.replace(value, REDACTED)
    return text


class SecretFilter(logging.Filter):
    """A logging filter that scrubs secrets from each record's message and traceback (added by the CLI)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _SECRETS:
            return True
        message = record.getMessage()
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


__all__ = [
    "ComponentConfig",
    "Field",
    "secret_from_env",
    "secret_name",
    "scrub",
    "SecretFilter",
    "looks_like_secret",
    "ENV_VAR_NAME",
    "EnvVarName",
    "ServerUrl",
    "REDACTED",
]
