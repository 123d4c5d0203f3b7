"""Routers that send each query to a local or an API ("strong") generator: weighted rules, and a local-first cascade.

A router only decides (``decide`` -> ``RouteDecision``); ``ragkit.generate.routed.RoutedGenerator`` applies the
decision, falls back along a chain when a generator fails or is not configured, escalates cascade answers, and
records it all in ``reply.metadata["route"]``. The trained classifier lives in ``ragkit.generate.classifier``.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, replace
from typing import Any, Callable, Literal, Mapping, Protocol, Sequence, runtime_checkable

from pydantic import ValidationError, field_validator

from ragkit.component import ComponentConfig, Field
from ragkit.errors import ConfigError
from ragkit.generate.query_features import FEATURE_NAMES, QueryFeatures, extract_features
from ragkit.language import abstention_match
from ragkit.types import Hit, Reply

log = logging.getLogger("ragkit.generate.rules")

LOCAL = "local"
STRONG = "strong"
LABELS = ("simple", "complex")  # simple -> local, complex -> strong


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """Which route and generator a query goes to, and why."""

    route: str
    generator: str
    score: float
    threshold: float
    features: Mapping[str, float]
    reason: str
    fallbacks: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "generator": self.generator,
            "score": round(self.score, 4),
            "threshold": round(self.threshold, 4),
            "features": dict(self.features),
            "reason": self.reason,
            "fallbacks": list(self.fallbacks),
        }


@runtime_checkable
class Router(Protocol):
    """Decides where a query goes; ``routes`` describes every route it can choose."""

    def decide(
        self, query: str, features: QueryFeatures | None = None, hits: Sequence[Hit] | None = None
    ) -> RouteDecision: ...

    def routes(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class RoutingExample:
    """A labelled query: ``label`` is "simple" (the local model answered it right) or "complex" (it did not, so it
    needs the strong model); ``hits`` are the query's retrieval hits (scores only), for the hit features."""

    query: str
    label: Literal["simple", "complex"]
    hits: tuple[Hit, ...] = ()


def _build_config(model: type[ComponentConfig], value: Any, owner: str) -> Any:
    """``value`` (a config, a mapping or None) as ``model``; validation errors become ConfigError naming the field."""
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(dict(value or {}))
    except ValidationError as e:
        problems = "; ".join(
            f"field {'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in e.errors()
        )
        raise ConfigError(f"{owner} config is invalid: {problems}") from e


class _Targets(ComponentConfig):
    local_generator: str = Field(LOCAL, min_length=1, max_length=200, description="Generator name for simple queries.")
    strong_generator: str = Field(
        STRONG, min_length=1, max_length=200, description="Generator name for complex queries."
    )


class Rule(ComponentConfig):
    """Adds ``weight`` to the score when feature ``feature`` is at least ``at_least``."""

    feature: str = Field(..., min_length=1, max_length=64, description="A name from FEATURE_NAMES.")
    at_least: float = Field(1.0, ge=0, le=100_000, description="The rule fires when the feature is at least this.")
    weight: float = Field(..., ge=-1, le=1, description="Added to the score when the rule fires.")

    @field_validator("feature")
    @classmethod
    def _known_feature(cls, v: str) -> str:
        if v not in FEATURE_NAMES:
            raise ValueError(f"unknown feature {v!r}; expected one of {', '.join(FEATURE_NAMES)}")
        return v


# Hand-weighted on the SQuAD (simple) / HotpotQA (complex) training split; comparison and bridge cues both count.
DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(feature="n_entities", at_least=2, weight=0.3),
    Rule(feature="n_entities", at_least=3, weight=0.2),
    Rule(feature="n_words", at_least=15, weight=0.2),
    Rule(feature="n_words", at_least=20, weight=0.2),
    Rule(feature="comparison", weight=0.2),
    Rule(feature="alternatives", weight=0.2),
    Rule(feature="multi_part", weight=0.1),
    Rule(feature="relative_clauses", weight=0.2),
    Rule(feature="wh_late", weight=0.2),
    Rule(feature="q_yesno", weight=0.2),
    Rule(feature="n_quoted", weight=0.1),
    Rule(feature="n_years", weight=0.1),
    Rule(feature="tool_markers", weight=-0.1),
)


class RuleRouterConfig(_Targets):
    threshold: float = Field(0.5, ge=0, le=1, description="Scores at or above go to the strong generator.")
    rules: tuple[Rule, ...] = Field(
        DEFAULT_RULES, max_length=200, description="Weighted rules; the score is their clipped sum."
    )


def _decision(
    targets: _Targets,
    score: float,
    threshold: float,
    features: QueryFeatures,
    why: str,
    fallbacks: tuple[str, ...] = (),
) -> RouteDecision:
    strong = score >= threshold
    route, gen = (STRONG, targets.strong_generator) if strong else (LOCAL, targets.local_generator)
    cmp = ">=" if strong else "<"
    return RouteDecision(
        route,
        gen,
        float(score),
        float(threshold),
        features.as_dict(),
        f"score {score:.3f} {cmp} {threshold:.3f}: {why}",
        fallbacks,
    )


class RuleRouter:
    """Weighted rules on query features; score (clipped to [0, 1]) at or above the threshold -> strong."""

    Config = RuleRouterConfig

    def __init__(self, config: RuleRouterConfig | Mapping[str, Any] | None = None) -> None:
        self.config: RuleRouterConfig = _build_config(RuleRouterConfig, config, "rules router")
        self._index = [(FEATURE_NAMES.index(r.feature), r) for r in self.config.rules]

    @classmethod
    def from_config(cls, config: RuleRouterConfig | Mapping[str, Any], **collaborators: Any) -> RuleRouter:
        return cls(config)

    def decide(
        self, query: str, features: QueryFeatures | None = None, hits: Sequence[Hit] | None = None
    ) -> RouteDecision:
        f = features or extract_features(query, hits)
        v = f.as_vector()
        fired = [r for i, r in self._index if v[i] >= r.at_least]
        score = min(1.0, max(0.0, sum(r.weight for r in fired)))
        why = ", ".join(f"{r.feature}>={r.at_least:g} ({r.weight:+g})" for r in fired) or "no rule fired"
        return _decision(self.config, score, self.config.threshold, f, why)

    def routes(self) -> list[dict[str, Any]]:
        t = self.config.threshold
        return [
            {
                "route": LOCAL,
                "generator": self.config.local_generator,
                "field": "local_generator",
                "when": f"rule score < {t:g}",
            },
            {
                "route": STRONG,
                "generator": self.config.strong_generator,
                "field": "strong_generator",
                "when": f"rule score >= {t:g}",
            },
        ]


class CascadeRouterConfig(_Targets):
    min_confidence: float = Field(
        0.35, ge=0, le=1, description="Escalate when exp(mean_logprob) of the local answer is below this."
    )
    abstain_patterns: tuple[str, ...] = Field(
        (),
        max_length=100,
        description="Extra regexes (case-insensitive) that mark an abstaining answer, on top of "
        "ragkit.language's detector.",
    )
    escalate_on_abstain: bool = Field(True, description="Escalate when the local answer abstains.")

    @field_validator("abstain_patterns")
    @classmethod
    def _compiles(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for p in v:
            try:
                re.compile(p)
            except re.error as e:
                raise ValueError(f"pattern {p!r} is not a valid regex: {e}") from e
        return v


class CascadeRouter:
    """Local first; escalate to the strong generator when the local answer abstains, fails validation or is unsure.

    ``first_stage`` (another router) may send a query straight to the strong route; ``validate`` (reply -> bool)
    rejects local answers the caller can check (JSON shape, cited ids, ...).
    """

    Config = CascadeRouterConfig

    def __init__(
        self,
        config: CascadeRouterConfig | Mapping[str, Any] | None = None,
        *,
        first_stage: Router | None = None,
        validate: Callable[[Reply], bool] | None = None,
    ) -> None:
        self.config: CascadeRouterConfig = _build_config(CascadeRouterConfig, config, "cascade router")
        self.first_stage = first_stage
        self.validate = validate
        self._abstain = (
            re.compile("|".join(f"(?:{p})" for p in self.config.abstain_patterns), re.IGNORECASE)
            if self.config.abstain_patterns
            else None
        )

    @classmethod
    def from_config(cls, config: CascadeRouterConfig | Mapping[str, Any], **collaborators: Any) -> CascadeRouter:
        return cls(config, first_stage=collaborators.get("first_stage"), validate=collaborators.get("validate"))

    def decide(
        self, query: str, features: QueryFeatures | None = None, hits: Sequence[Hit] | None = None
    ) -> RouteDecision:
        f = features or extract_features(query, hits)
        c = self.config
        if self.first_stage is not None:
            first = self.first_stage.decide(query, f, hits)
            if first.route == STRONG:
                return replace(first, generator=c.strong_generator, reason=f"first stage: {first.reason}")
            score = first.score
        else:
            score = 0.0
        reason = (
            f"local first; escalate to {c.strong_generator} on abstention, failed validation or "
            f"confidence < {c.min_confidence:g}"
        )
        return RouteDecision(
            LOCAL, c.local_generator, score, c.min_confidence, f.as_dict(), reason, (c.strong_generator,)
        )

    def escalation_reason(self, reply: Reply) -> str | None:
        """Why the local ``reply`` should be escalated, or None to keep it."""
        if self.config.escalate_on_abstain:
            m = self._abstain.search(reply.text) if self._abstain is not None else None
            words = m.group(0) if m else abstention_match(reply.text)
            if words:
                return f"abstained ({words!r})"
        if self.validate is not None:
            try:
                ok = self.validate(reply)
            except Exception as e:  # a crashing validator rejects the answer rather than the whole request
                log.warning("validation callback raised %s; escalating", type(e).__name__)
                return f"validation raised {type(e).__name__}"
            if not ok:
                return "failed validation"
        lp = reply.metadata.get("mean_logprob")
        if isinstance(lp, (int, float)) and math.isfinite(lp):
            confidence = math.exp(min(0.0, float(lp)))
            if confidence < self.config.min_confidence:
                return f"low confidence: exp(mean_logprob)={confidence:.3f} < {self.config.min_confidence:g}"
        return None

    def routes(self) -> list[dict[str, Any]]:
        c = self.config
        rows = [
            {
                "route": LOCAL,
                "generator": c.local_generator,
                "field": "local_generator",
                "when": "always first" + (" unless the first stage says strong" if self.first_stage else ""),
            },
            {
                "route": STRONG,
                "generator": c.strong_generator,
                "field": "strong_generator",
                "when": f"local answer abstains, fails validation or exp(mean_logprob) < {c.min_confidence:g}",
            },
        ]
        return rows


def routing_table(router: Any) -> list[dict[str, Any]]:
    """Rows describing every route (for ``ragkit plan``); a ``RoutedGenerator`` adds its fallback chains."""
    chain_after = getattr(router, "chain_after", None)
    if chain_after is not None:  # a RoutedGenerator
        return [{**row, "fallbacks": chain_after(row["generator"])} for row in router.router.routes()]
    return [{**row, "fallbacks": []} for row in router.routes()]


__all__ = [
    "LOCAL",
    "STRONG",
    "LABELS",
    "RouteDecision",
    "Router",
    "RoutingExample",
    "Rule",
    "DEFAULT_RULES",
    "RuleRouter",
    "RuleRouterConfig",
    "CascadeRouter",
    "CascadeRouterConfig",
    "routing_table",
]
