"""Finding files that pip data packages installed, without importing the packages (some import heavy things)."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import Any, Callable

from ragkit.errors import ConfigError


def package_dir(module: str, find: Callable[[str], Any] = find_spec) -> Path | None:
    """The directory pip installed the package ``module`` into, or None when it is not installed."""
    try:
        spec = find(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def require_package_dir(module: str, install: str, what: str, find: Callable[[str], Any] = find_spec) -> Path:
    """``package_dir`` or a ``ConfigError`` that says what needs the package and the command that installs it."""
    found = package_dir(module, find)
    if found is None:
        raise ConfigError(f"{what} needs the package {module!r}: {install}")
    return found


__all__ = ["package_dir", "require_package_dir"]
