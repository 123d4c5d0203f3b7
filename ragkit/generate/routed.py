"""The generator that applies a router's decision: falls back along a chain, escalates cascade answers, and
re-plans the prompt for each generator it tries (route before budget)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, AsyncIterator, Callable, Mapping, Sequence

from ragkit.component import ComponentConfig, Field
from ragkit.errors import ConfigError, ProviderError
from ragkit.generate.base import first_success, open_stream
from ragkit.generate.rules import LOCAL, RouteDecision, Router, _build_config
from ragkit.model_info import Price
from ragkit.types import Delta, Hit, Message, Reply

log = logging.getLogger("ragkit.generate.routed")

PromptFor = Callable[[Any], Sequence[Message]]


class RoutedGeneratorConfig(ComponentConfig):
    fallback_chain: tuple[str, ...] = Field(
        (), max_length=50, description="Generator names tried, in order, after the chosen one fails."
    )
    prices: dict[str, Price] = Field(
        default_factory=dict, description="Generator name -> price, for the cost estimate in metadata."
    )


@dataclass
class _Trace:
    decision: RouteDecision
    overhead_ms: float
    fallbacks_taken: list[dict[str, str]] = field(default_factory=list)
    escalations: list[dict[str, str]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)


class RoutedGenerator:
    """A Generator that routes each request with ``router`` to one of ``generators``, with fallbacks and escalation."""

    Config = RoutedGeneratorConfig

    def __init__(
        self,
        router: Router,
        generators: Mapping[str, Any],
        fallback_chain: Sequence[str] = (),
        *,
        prices: Mapping[str, Price | Mapping[str, float]] | None = None,
    ) -> None:
        cfg = _build_config(
            RoutedGeneratorConfig,
            {"fallback_chain": tuple(fallback_chain), "prices": dict(prices or {})},
            "routed generator",
        )
        self.config: RoutedGeneratorConfig = cfg
        self.router = router
        self.generators = dict(generators)
        if not self.generators:
            raise ConfigError("routed generator needs at least one generator (field generators)")
        defined = ", ".join(sorted(self.generators))
        for row in router.routes():
            if row["generator"] not in self.generators:
                raise ConfigError(
                    f"route {row['route']!r} (field {row.get('field', 'generator')}) names generator "
                    f"{row['generator']!r}, which is not defined; defined: {defined}"
                )
        for name in cfg.fallback_chain:
            if name not in self.generators:
                raise ConfigError(
                    f"field fallback_chain names generator {name!r}, which is not defined; defined: {defined}"
                )
        for name in cfg.prices:
            if name not in self.generators:
                raise ConfigError(f"field prices names generator {name!r}, which is not defined; defined: {defined}")
        self.id = "routed(" + ",".join(self.generators) + ")"
        self.context_window = min(int(getattr(g, "context_window", 0) or 0) for g in self.generators.values()) or 8192

    @classmethod
    def from_config(cls, config: RoutedGeneratorConfig | Mapping[str, Any], **collaborators: Any) -> RoutedGenerator:
        cfg = _build_config(RoutedGeneratorConfig, config, "routed generator")
        if "router" not in collaborators or "generators" not in collaborators:
            raise ConfigError("routed generator needs collaborators 'router' and 'generators'")
        return cls(collaborators["router"], collaborators["generators"], cfg.fallback_chain, prices=cfg.prices)

    def chain_after(self, name: str) -> list[str]:
        """Generators tried, in order, when ``name`` fails."""
        return [n for n in self.config.fallback_chain if n != name]

    def count_tokens(self, text: str) -> int:
        return max(g.count_tokens(text) for g in self.generators.values())

    def _metadata(self, trace: _Trace, used: str) -> dict[str, Any]:
        d = trace.decision
        meta: dict[str, Any] = {
            **d.as_dict(),
            "planned_generator": d.generator,
            "generator": used,
            "overhead_ms": round(trace.overhead_ms, 4),
            "fallbacks": self.chain_after(d.generator),
            "escalate_to": list(d.fallbacks),
            "fallbacks_taken": trace.fallbacks_taken,
            "fell_back": used != d.generator and bool(trace.fallbacks_taken),
            "escalations": trace.escalations,
            "calls": trace.calls,
            "summary": _summary(d, used, trace),
        }
        if self.config.prices:
            meta["cost_usd"] = sum(c.get("cost_usd", 0.0) for c in trace.calls)
        return meta

    def _decide(self, messages: Sequence[Message], hits: Sequence[Hit] | None, query: str | None = None) -> _Trace:
        # A RAG prompt's user turn carries the sources too; the pipeline passes the bare question as ``query``.
        if query is None:
            query = next((m.content for m in reversed(messages) if m.role == "user"), "")
        t0 = time.perf_counter()
        decision = self.router.decide(query, hits=hits)
        trace = _Trace(decision, (time.perf_counter() - t0) * 1000)
        log.info("route %s -> %s (%s)", decision.route, decision.generator, decision.reason)
        return trace

    def order(self, decision: RouteDecision) -> list[str]:
        """Generators tried for ``decision``, in order: the chosen one, its escalation target, then the fallbacks."""
        names = [decision.generator, *decision.fallbacks[:1], *self.chain_after(decision.generator)]
        return list(dict.fromkeys(n for n in names if n in self.generators))

    def _record(self, trace: _Trace, name: str, reply: Reply) -> None:
        call: dict[str, Any] = {
            "generator": name,
            "input_tokens": reply.usage.input_tokens,
            "output_tokens": reply.usage.output_tokens,
        }
        price = self.config.prices.get(name)
        if price is not None:
            call["cost_usd"] = price.cost(reply.usage.input_tokens, reply.usage.output_tokens)
        trace.calls.append(call)

    async def generate(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        tools: Sequence[Any] | None = None,
        json_schema: Mapping[str, Any] | None = None,
        hits: Sequence[Hit] | None = None,
        query: str | None = None,
        prompt_for: PromptFor | None = None,
    ) -> Reply:
        """Route, call, fall back, escalate; ``reply.metadata["route"]`` says what happened and why.

        ``prompt_for(generator)``, when given, builds the messages for each generator tried, so every prompt is
        planned for the window and tokenizer of the generator that receives it; else ``messages`` go to all.
        """
        trace = self._decide(messages, hits, query)
        escalate = getattr(self.router, "escalation_reason", None)
        first = trace.decision.generator

        def reject(name: str, reply: Reply) -> str | None:
            if trace.decision.route != LOCAL or escalate is None or name != first or not trace.decision.fallbacks:
                return None
            return escalate(reply)

        async def attempt(gen: Any) -> Reply:
            prompt = prompt_for(gen) if prompt_for is not None else messages
            return await gen.generate(prompt, max_tokens=max_tokens, tools=tools, json_schema=json_schema)

        names = self.order(trace.decision)
        reply, used = await first_success(
            [(n, self.generators[n]) for n in names],
            _recorded(self, trace, attempt, names),
            fall_on=(ProviderError, ConfigError),
            reject=reject,
            failures=trace.fallbacks_taken,
            rejections=trace.escalations,
        )
        return replace(reply, metadata={**reply.metadata, "route": self._metadata(trace, used)})

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        tools: Sequence[Any] | None = None,
        hits: Sequence[Hit] | None = None,
        query: str | None = None,
        prompt_for: PromptFor | None = None,
    ) -> AsyncIterator[Delta]:
        """Stream from the routed generator; a cascade must judge the whole answer, so it yields it in one piece."""
        if getattr(self.router, "escalation_reason", None) is not None:
            reply = await self.generate(
                messages, max_tokens=max_tokens, tools=tools, hits=hits, query=query, prompt_for=prompt_for
            )
            yield Delta(text=reply.text)
            yield Delta(reply=reply)
            return
        trace = self._decide(messages, hits, query)

        def attempt(gen: Any) -> Any:
            prompt = prompt_for(gen) if prompt_for is not None else messages
            return open_stream(gen.stream(prompt, max_tokens=max_tokens, tools=tools))

        names = [trace.decision.generator, *self.chain_after(trace.decision.generator)]
        opened, name = await first_success(
            [(n, self.generators[n]) for n in names],
            attempt,
            fall_on=(ProviderError, ConfigError),
            failures=trace.fallbacks_taken,
        )
        async for delta in opened:
            if delta.reply is not None:
                self._record(trace, name, delta.reply)
                delta = replace(
                    delta,
                    reply=replace(delta.reply, metadata={**delta.reply.metadata, "route": self._metadata(trace, name)}),
                )
            yield delta


def _summary(decision: RouteDecision, used: str, trace: _Trace) -> str:
    """One line on what happened: where the router sent the question, what failed or escalated, who answered."""
    parts = [f"routed to {decision.generator} ({decision.route})"]
    for f in trace.fallbacks_taken:
        parts.append(f"{f['generator']} failed ({f['error']}: {f['message']}), fell back")
    for e in trace.escalations:
        parts.append(f"{e['from']} escalated to {e['to']} ({e['reason']})")
    parts.append(f"answered by {used}")
    return "; ".join(parts)


def _recorded(
    routed: RoutedGenerator, trace: _Trace, attempt: Callable[[Any], Any], names: Sequence[str]
) -> Callable[[Any], Any]:
    """``attempt`` that also records each answered call (tokens, cost) in the trace."""
    name_of = {id(routed.generators[n]): n for n in names}

    async def call(gen: Any) -> Reply:
        reply = await attempt(gen)
        routed._record(trace, name_of[id(gen)], reply)
        return reply

    return call


class LazyGenerator:
    """A configured generator built on first use, so a missing API key surfaces as a ``ConfigError`` the routed
    generator can fall back from; until it builds, its window is the configured one (else 8192) and tokens are
    counted with tiktoken."""

    def __init__(self, name: str, build: Callable[[], Any], configured_window: int | None = None) -> None:
        self.id = name
        self._build = build
        self._configured_window = configured_window
        self._fallback_count: Callable[[str], int] | None = None

    @property
    def context_window(self) -> int:
        try:
            return self._build().context_window
        except ConfigError:
            return self._configured_window or 8192

    def count_tokens(self, text: str) -> int:
        try:
            return self._build().count_tokens(text)
        except ConfigError:
            if self._fallback_count is None:
                from ragkit.answer.budget import tiktoken_counter

                self._fallback_count = tiktoken_counter()
            return self._fallback_count(text)

    async def generate(self, messages: Sequence[Message], **kwargs: Any) -> Reply:
        return await self._build().generate(messages, **kwargs)

    async def stream(self, messages: Sequence[Message], **kwargs: Any) -> AsyncIterator[Delta]:
        async for delta in self._build().stream(messages, **kwargs):
            yield delta


__all__ = ["RoutedGenerator", "RoutedGeneratorConfig", "LazyGenerator", "PromptFor"]
