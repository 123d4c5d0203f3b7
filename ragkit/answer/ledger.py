"""The usage ledger of one request: timed stages, tokens, retries, cost, the route taken, tool calls, and what
compression and prompt caching saved. Each stage is also an OpenTelemetry span (``ragkit.tracing``).

Token convention: ``input_tokens`` includes ``cached_tokens`` (OpenAI's accounting); providers whose
API reports cache reads separately add them in before recording.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from ragkit import tracing
from ragkit.answer.usage import STAGES, StageRecord, UsageReport
from ragkit.errors import DataError
from ragkit.model_info import PriceTable
from ragkit.types import Reply, Usage


@dataclass
class StageTimer:
    """The mutable handle ``Ledger.stage`` yields: set tokens, model and retries while the stage runs."""

    stage: str
    model: str = ""
    provider: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    embedding_tokens: int = 0
    retries: int = 0
    route: Mapping[str, Any] | None = None
    tool_calls: list[Mapping[str, Any]] = field(default_factory=list)
    response_cache_hit: bool = False

    def add_usage(self, usage: Usage) -> None:
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cached_tokens += usage.cached_tokens

    def add_reply(self, reply: Reply) -> None:
        """Usage, model, retries, route decision, tool calls and response-cache hit from a generator's reply."""
        self.add_usage(reply.usage)
        self.model = self.model or reply.model
        self.retries += int(reply.metadata.get("retries", 0) or 0)
        route = reply.metadata.get("route")
        if isinstance(route, Mapping):
            self.route = {k: route.get(k) for k in ("route", "generator", "reason") if route.get(k) is not None}
        for call in reply.metadata.get("tool_calls") or ():
            name = getattr(call, "name", None)
            if name:
                self.tool_calls.append(
                    {"name": name, "duration_s": getattr(call, "duration_s", 0.0), "attempts": call.attempts}
                    | {"error": getattr(call, "error", None)}
                )
        self.response_cache_hit = self.response_cache_hit or reply.metadata.get("response_cache") == "hit"


class Ledger:
    """Collects the stages of one request; clock and price table are injectable."""

    def __init__(
        self,
        *,
        prices: PriceTable | None = None,
        clock: Callable[[], float] = time.perf_counter,
        request_id: str | None = None,
    ) -> None:
        self.prices = prices or PriceTable()
        self._clock = clock
        self.request_id = request_id or uuid.uuid4().hex
        self.records: list[StageRecord] = []
        self.compression_before = 0
        self.compression_after = 0
        self.route: Mapping[str, Any] | None = None
        self.tool_calls: list[Mapping[str, Any]] = []
        self.response_cache_hits = 0

    @contextmanager
    def stage(self, name: str, *, model: str = "", provider: str = "") -> Iterator[StageTimer]:
        """Time a stage in a span of its name; it is recorded even when it raises (with the error's type)."""
        timer = StageTimer(name, model=model, provider=provider)
        start = self._clock()
        error: str | None = None
        with tracing.span(name) as span:
            try:
                yield timer
            except BaseException as e:
                error = type(e).__name__
                raise
            finally:
                self._finish_stage(timer, (self._clock() - start) * 1000, error, span)

    def _finish_stage(self, timer: StageTimer, latency_ms: float, error: str | None, span: tracing.Span) -> None:
        self.route = timer.route or self.route
        self.tool_calls.extend(timer.tool_calls)
        self.response_cache_hits += timer.response_cache_hit
        rec = self.record(
            timer.stage,
            latency_ms=latency_ms,
            input_tokens=timer.input_tokens,
            output_tokens=timer.output_tokens,
            cached_tokens=timer.cached_tokens,
            embedding_tokens=timer.embedding_tokens,
            model=timer.model,
            provider=timer.provider,
            retries=timer.retries,
            error=error,
        )
        if timer.input_tokens or timer.output_tokens or timer.model:
            span.record_model_call(
                model=rec.model,
                provider=rec.provider,
                input_tokens=rec.input_tokens,
                output_tokens=rec.output_tokens,
                cached_tokens=rec.cached_tokens,
                cost_usd=rec.cost_usd,
            )
        span.record_route(timer.route)
        span.set({"ragkit.embedding_tokens": timer.embedding_tokens or None, "error.type": error})

    def record(
        self,
        stage: str,
        *,
        latency_ms: float = 0.0,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cached_tokens: int = 0,
        embedding_tokens: int = 0,
        model: str = "",
        provider: str = "",
        retries: int = 0,
        error: str | None = None,
    ) -> StageRecord:
        """Add a stage measured elsewhere; its cost comes from the price table."""
        billable = input_tokens + output_tokens + embedding_tokens
        price = self.prices.price_for(model, provider) if (model or provider) else None
        saved = 0.0
        if not billable:
            cost: float | None = 0.0
        elif price is None:
            cost = None
        else:
            cost = price.cost(input_tokens + embedding_tokens, output_tokens, cached_tokens)
            saved = price.cost(input_tokens) - price.cost(input_tokens, 0, cached_tokens) if cached_tokens else 0.0
        rec = StageRecord(
            stage,
            float(latency_ms),
            input_tokens,
            output_tokens,
            cached_tokens,
            embedding_tokens,
            model,
            provider,
            retries,
            cost,
            error,
            saved,
        )
        self.records.append(rec)
        return rec

    def note_compression(self, tokens_before: int, tokens_after: int) -> None:
        """Record what compression removed from the prompt (adds up over several calls)."""
        self.compression_before += tokens_before
        self.compression_after += tokens_after

    def report(self) -> UsageReport:
        """The frozen summary of everything recorded so far."""
        recs = tuple(self.records)
        unpriced = tuple(sorted({r.model or r.provider for r in recs if r.cost_usd is None}))
        saved = max(0, self.compression_before - self.compression_after)
        savings: float | None = 0.0 if not saved else None
        gen = next((r for r in recs if r.stage == "generate" and (r.model or r.provider)), None)
        if saved and gen is not None:
            price = self.prices.price_for(gen.model, gen.provider)
            savings = price.cost(saved) if price is not None else None
        return UsageReport(
            request_id=self.request_id,
            stages=recs,
            input_tokens=sum(r.input_tokens for r in recs),
            output_tokens=sum(r.output_tokens for r in recs),
            cached_tokens=sum(r.cached_tokens for r in recs),
            embedding_tokens=sum(r.embedding_tokens for r in recs),
            latency_ms=sum(r.latency_ms for r in recs),
            cost_usd=sum(r.cost_usd or 0.0 for r in recs),
            unpriced_models=unpriced,
            compression_tokens_before=self.compression_before,
            compression_tokens_after=self.compression_after,
            compression_savings_usd=savings,
            cache_savings_usd=sum(r.cache_savings_usd for r in recs),
            route=self.route,
            tool_calls=tuple(self.tool_calls),
            response_cache_hits=self.response_cache_hits,
        )

    def to_json(self) -> str:
        return self.report().to_json()


def embedding_tokens(embedder: Any, text: str) -> int:
    """Tokens ``embedder`` spends on ``text``, by its own counter; 0 when it has none."""
    try:
        return int(embedder.counter().count(text))
    except (AttributeError, TypeError, NotImplementedError):
        return 0


class JsonlLedgerWriter:
    """Appends one JSON line per request to ``path`` (parent folders created); safe across threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def write(self, report: UsageReport | Ledger) -> None:
        line = (report.report() if isinstance(report, Ledger) else report).to_json()
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(line + "\n")
            except OSError as e:
                raise DataError(f"cannot append to the usage ledger: {e.strerror or e}", path=str(self.path)) from e


def read_usage_reports(path: str | Path) -> list[UsageReport]:
    """The reports a ``JsonlLedgerWriter`` wrote; a bad line raises ``DataError`` naming it."""
    out: list[UsageReport] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise DataError(f"cannot read the usage ledger: {e.strerror or e}", path=str(path)) from e
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(UsageReport.from_dict(json.loads(line)))
        except (ValueError, TypeError, AttributeError) as e:
            raise DataError(f"not a usage report: {e}", path=str(path), line=n) from e
    return out


@dataclass(frozen=True, slots=True)
class StageSummary:
    """Latency percentiles and token totals of one stage across requests."""

    count: int
    p50_ms: float
    p95_ms: float
    input_tokens: int
    output_tokens: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class UsageSummary:
    """Totals across requests, per-stage latency percentiles, cost."""

    requests: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    embedding_tokens: int
    cost_usd: float
    compression_tokens_saved: int
    compression_savings_usd: float
    stages: Mapping[str, StageSummary] = field(default_factory=dict)
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    cache_savings_usd: float = 0.0
    routes: Mapping[str, int] = field(default_factory=dict)  # requests per route taken
    tool_calls: Mapping[str, int] = field(default_factory=dict)  # calls per tool name
    response_cache_hits: int = 0

    def table(self) -> str:
        """A fixed-width text table for the command line."""
        lines = [
            f"requests {self.requests}   cost ${self.cost_usd:.6f}   tokens in {self.input_tokens} "
            f"(cached {self.cached_tokens}) out {self.output_tokens} embed {self.embedding_tokens}",
            f"compression saved {self.compression_tokens_saved} tokens (${self.compression_savings_usd:.6f})   "
            f"request latency p50 {self.p50_ms:.1f} ms p95 {self.p95_ms:.1f} ms",
            f"prompt cache saved ${self.cache_savings_usd:.6f}   response cache hits {self.response_cache_hits}   "
            f"routes {_counts(self.routes)}   tool calls {_counts(self.tool_calls)}",
            f"{'stage':<10} {'count':>6} {'p50 ms':>9} {'p95 ms':>9} {'tok in':>9} {'tok out':>8} {'cost $':>10}",
        ]
        for name, s in self.stages.items():
            lines.append(
                f"{name:<10} {s.count:>6} {s.p50_ms:>9.1f} {s.p95_ms:>9.1f} {s.input_tokens:>9} "
                f"{s.output_tokens:>8} {s.cost_usd:>10.6f}"
            )
        return "\n".join(lines)


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation; 0.0 for no values."""
    data = sorted(values)
    if not data:
        return 0.0
    pos = (len(data) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def summarise(records: Iterable[UsageReport | Mapping[str, Any]]) -> UsageSummary:
    """Totals, per-stage p50/p95 latency and cost over many requests (reports or their dicts)."""
    reports = [r if isinstance(r, UsageReport) else UsageReport.from_dict(r) for r in records]
    by_stage: dict[str, list[StageRecord]] = {}
    for r in reports:
        for s in r.stages:
            by_stage.setdefault(s.stage, []).append(s)
    order = [s for s in STAGES if s in by_stage] + sorted(set(by_stage) - set(STAGES))
    stages = {
        name: StageSummary(
            count=len(by_stage[name]),
            p50_ms=percentile((s.latency_ms for s in by_stage[name]), 50),
            p95_ms=percentile((s.latency_ms for s in by_stage[name]), 95),
            input_tokens=sum(s.input_tokens for s in by_stage[name]),
            output_tokens=sum(s.output_tokens for s in by_stage[name]),
            cost_usd=sum(s.cost_usd or 0.0 for s in by_stage[name]),
        )
        for name in order
    }
    return UsageSummary(
        requests=len(reports),
        input_tokens=sum(r.input_tokens for r in reports),
        output_tokens=sum(r.output_tokens for r in reports),
        cached_tokens=sum(r.cached_tokens for r in reports),
        embedding_tokens=sum(r.embedding_tokens for r in reports),
        cost_usd=sum(r.cost_usd for r in reports),
        compression_tokens_saved=sum(r.compression_tokens_saved for r in reports),
        compression_savings_usd=sum(r.compression_savings_usd or 0.0 for r in reports),
        stages=stages,
        p50_ms=percentile((r.latency_ms for r in reports), 50),
        p95_ms=percentile((r.latency_ms for r in reports), 95),
        cache_savings_usd=sum(r.cache_savings_usd for r in reports),
        routes=dict(Counter(str(r.route.get("route")) for r in reports if r.route)),
        tool_calls=dict(Counter(str(c.get("name")) for r in reports for c in r.tool_calls)),
        response_cache_hits=sum(r.response_cache_hits for r in reports),
    )


__all__ = [
    "STAGES",
    "StageRecord",
    "StageTimer",
    "UsageReport",
    "Ledger",
    "JsonlLedgerWriter",
    "embedding_tokens",
    "read_usage_reports",
    "StageSummary",
    "UsageSummary",
    "percentile",
    "summarise",
]
