"""OpenTelemetry spans for the pipeline's stages, with the GenAI semantic-convention attributes.

One span per stage (``ask``, ``rewrite``, ``retrieve``, ``rerank``, ``plan``, ``compress``, ``generate``, ``tool``),
named by the stage and carrying ``ragkit.stage``; model calls add ``gen_ai.operation.name``,
``gen_ai.provider.name``, ``gen_ai.request.model``/``gen_ai.response.model``, ``gen_ai.usage.input_tokens``/
``output_tokens``/``cache_read.input_tokens``, and ragkit's own ``ragkit.cost_usd`` and ``ragkit.route.*``
(the conventions have no names for cost or routing).

Without the ``otel`` extra (``opentelemetry-api``) every call here is a no-op. With the API but no SDK configured,
OpenTelemetry's own non-recording spans make it nearly free. Spans go to the global tracer provider unless
``use_tracer_provider`` names another (tests pass an in-memory exporter's provider this way). Question and answer
texts are never put on spans: they may be personal data.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Mapping

TRACER_NAME = "ragkit"
STAGE_OPERATIONS = {"retrieve": "retrieval", "generate": "chat", "tool": "execute_tool", "embed": "embeddings"}

_provider: Any = None


def use_tracer_provider(provider: Any) -> None:
    """Send ragkit's spans to ``provider`` (an SDK ``TracerProvider``); ``None`` goes back to the global one."""
    global _provider
    _provider = provider


def _tracer() -> Any:
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    if _provider is not None:
        return _provider.get_tracer(TRACER_NAME)
    return trace.get_tracer(TRACER_NAME)


def _clean(value: Any) -> Any:
    """A value OpenTelemetry accepts as an attribute (str, bool, int, float or a list of one of them), else None."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        items = [v for v in value if isinstance(v, (str, bool, int, float))]
        return items if items and len({type(v) for v in items}) == 1 else None
    return str(value)


class Span:
    """A started span, or nothing at all; attributes whose value is None are dropped."""

    __slots__ = ("_span",)

    def __init__(self, span: Any = None) -> None:
        self._span = span

    @property
    def recording(self) -> bool:
        return self._span is not None and self._span.is_recording()

    def set(self, attributes: Mapping[str, Any]) -> None:
        if not self.recording:
            return
        for key, value in attributes.items():
            value = _clean(value)
            if value is not None:
                self._span.set_attribute(key, value)

    def record_model_call(
        self,
        *,
        model: str = "",
        provider: str = "",
        input_tokens: int = 0,
        output_tokens: int = 0,
        cached_tokens: int = 0,
        cost_usd: float | None = None,
    ) -> None:
        """The GenAI usage attributes of one model call (or the sum of a stage's calls)."""
        if not self.recording:
            return
        if not provider and ":" in model:
            provider = model.split(":", 1)[0]
        self.set(
            {
                "gen_ai.provider.name": provider or None,
                "gen_ai.request.model": model or None,
                "gen_ai.response.model": model or None,
                "gen_ai.usage.input_tokens": input_tokens,
                "gen_ai.usage.output_tokens": output_tokens,
                "gen_ai.usage.cache_read.input_tokens": cached_tokens or None,
                "ragkit.cost_usd": cost_usd,
            }
        )

    def record_route(self, route: Mapping[str, Any] | None) -> None:
        """A router's decision (``Reply.metadata["route"]``): route, generator used and the reason."""
        if route:
            self.set(
                {
                    "ragkit.route": route.get("route"),
                    "ragkit.route.generator": route.get("generator"),
                    "ragkit.route.reason": route.get("reason"),
                }
            )


NOOP = Span()


@contextmanager
def span(stage: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Span]:
    """A span named ``stage``, current while the block runs; an exception marks it failed and propagates."""
    tracer = _tracer()
    if tracer is None:
        yield NOOP
        return
    attrs: dict[str, Any] = {"ragkit.stage": stage}
    if stage in STAGE_OPERATIONS:
        attrs["gen_ai.operation.name"] = STAGE_OPERATIONS[stage]
    with tracer.start_as_current_span(stage, record_exception=True, set_status_on_exception=True) as otel_span:
        handle = Span(otel_span)
        handle.set({**attrs, **(attributes or {})})
        yield handle


class Traced:
    """Wraps a component so that each call of ``method`` runs inside a span named ``stage``; all else passes through."""

    def __init__(self, inner: Any, method: str, stage: str) -> None:
        self.inner = inner
        self._method = method
        self._stage = stage

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.inner, name)
        if name != self._method:
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            with span(self._stage, {"ragkit.component": type(self.inner).__name__}):
                return value(*args, **kwargs)

        return call


def traced(component: Any, method: str, stage: str) -> Any:
    """``component`` with spans around its (synchronous) ``method``; None stays None."""
    return None if component is None else Traced(component, method, stage)


__all__ = ["span", "Span", "NOOP", "traced", "Traced", "use_tracer_provider", "STAGE_OPERATIONS", "TRACER_NAME"]
