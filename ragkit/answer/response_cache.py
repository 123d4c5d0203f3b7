"""An opt-in exact-match response cache: one SQLite file, keyed on the model, its parameters and the full prompt.

A hit returns the stored reply with zero usage (nothing was spent) and ``metadata["response_cache"] == "hit"``; the
original usage is kept in ``metadata["cached_usage"]``. Entries older than ``ttl_s`` are misses and are deleted;
past ``max_entries`` the oldest go first. Only complete answers are stored: no tool-call replies, no errors.
The key covers every message (system prompt, history, sources, question), the call's parameters (max_tokens,
tools, JSON schema) and the generator's own config (model, temperature, endpoint), so a change to any of them
misses. Turned on by ``response_cache: {enabled: true}`` in the pipeline YAML.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Mapping, Sequence

from ragkit.component import ComponentConfig, Field
from ragkit.errors import ConfigError
from ragkit.types import Delta, Message, Reply

SCHEMA_VERSION = 1


class ResponseCacheSettings(ComponentConfig):
    """The exact response cache (the ``response_cache`` block); off unless ``enabled``."""

    enabled: bool = Field(False, description="Serve a repeated identical prompt from the cache.")
    path: str | None = Field(
        None, min_length=1, max_length=4096, description="SQLite file; default responses.sqlite in index_dir."
    )
    ttl_s: float = Field(86_400.0, gt=0, le=10 * 365 * 86_400, description="Seconds an answer stays valid.")
    max_entries: int = Field(10_000, ge=1, le=10_000_000, description="Most answers kept; the oldest go first.")


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def cache_key(model: str, params: Mapping[str, Any], messages: Sequence[Message]) -> str:
    """sha256 of the canonical JSON of model, parameters and every message."""
    data = {"v": SCHEMA_VERSION, "model": model, "params": _plain(params), "messages": _plain(list(messages))}
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


class ResponseCache:
    """Replies in SQLite by key, with a TTL; safe across threads; clock injectable."""

    def __init__(
        self,
        path: str | Path,
        *,
        ttl_s: float = 86_400.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._wrapped: dict[int, CachedGenerator] = {}
        self.hits = 0
        self.misses = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            with self._db:
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS responses"
                    " (key TEXT PRIMARY KEY, created REAL NOT NULL, reply TEXT NOT NULL)"
                )
                self._db.execute("CREATE INDEX IF NOT EXISTS responses_created ON responses (created)")
        except (OSError, sqlite3.Error) as e:
            raise ConfigError(f"cannot open the response cache {self.path}: {e}") from e

    @classmethod
    def from_settings(cls, settings: ResponseCacheSettings, index_dir: str | Path) -> ResponseCache | None:
        """The cache the settings ask for, or None when it is off."""
        if not settings.enabled:
            return None
        path = settings.path or Path(index_dir) / "responses.sqlite"
        return cls(path, ttl_s=settings.ttl_s, max_entries=settings.max_entries)

    def get(self, key: str) -> Reply | None:
        with self._lock:
            row = self._db.execute("SELECT created, reply FROM responses WHERE key = ?", (key,)).fetchone()
            if row is not None and self._clock() - row[0] > self.ttl_s:
                with self._db:
                    self._db.execute("DELETE FROM responses WHERE key = ?", (key,))
                row = None
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        data = json.loads(row[1])
        usage = data.get("usage") or {}
        return Reply(
            text=data["text"],
            model=data.get("model", ""),
            stop_reason=data.get("stop_reason", "stop"),
            metadata={"response_cache": "hit", "cached_at": row[0], "cached_usage": usage},
        )

    def put(self, key: str, reply: Reply) -> bool:
        """Store a complete answer; returns whether it was stored (tool calls and errors are not)."""
        if reply.tool_calls or reply.stop_reason in ("error", "tool_calls") or not reply.text:
            return False
        data = {"text": reply.text, "model": reply.model, "stop_reason": reply.stop_reason}
        data["usage"] = asdict(reply.usage)
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, created, reply) VALUES (?, ?, ?)",
                (key, self._clock(), json.dumps(data, ensure_ascii=False)),
            )
            self._db.execute(
                "DELETE FROM responses WHERE key IN"
                " (SELECT key FROM responses ORDER BY created DESC LIMIT -1 OFFSET ?)",
                (self.max_entries,),
            )
        return True

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def wrap(self, generator: Any) -> CachedGenerator:
        """``generator`` behind this cache (one wrapper per generator)."""
        if isinstance(generator, CachedGenerator):
            return generator
        wrapped = self._wrapped.get(id(generator))
        if wrapped is None or wrapped.inner is not generator:
            wrapped = self._wrapped[id(generator)] = CachedGenerator(generator, self)
        return wrapped

    def close(self) -> None:
        with self._lock:
            self._db.close()


class CachedGenerator:
    """A generator whose identical calls are answered from a ``ResponseCache``; everything else passes through."""

    def __init__(self, inner: Any, cache: ResponseCache) -> None:
        self.inner = inner
        self.cache = cache

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _key(self, messages: Sequence[Message], kwargs: Mapping[str, Any]) -> str:
        config = getattr(self.inner, "config", None)
        own = config.model_dump(mode="json") if hasattr(config, "model_dump") else {}
        model = str(getattr(self.inner, "id", "") or type(self.inner).__name__)
        return cache_key(model, {"call": dict(kwargs), "generator": own}, messages)

    async def generate(self, messages: Sequence[Message], **kwargs: Any) -> Reply:
        key = self._key(messages, kwargs)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        reply = await self.inner.generate(messages, **kwargs)
        self.cache.put(key, reply)
        return reply

    async def stream(self, messages: Sequence[Message], **kwargs: Any) -> AsyncIterator[Delta]:
        key = self._key(messages, kwargs)
        hit = self.cache.get(key)
        if hit is not None:
            yield Delta(text=hit.text)
            yield Delta(reply=hit)
            return
        async for delta in self.inner.stream(messages, **kwargs):
            if delta.reply is not None:
                self.cache.put(key, delta.reply)
            yield delta


__all__ = [
    "ResponseCacheSettings",
    "ResponseCache",
    "CachedGenerator",
    "cache_key",
]
