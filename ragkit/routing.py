"""Routing each query to a local or an API ("strong") generator: weighted rules, a calibrated classifier, a cascade.

A router only decides (``decide`` -> ``RouteDecision``); ``RoutedGenerator`` applies the decision, falls back
along a chain when a generator fails or is not configured, escalates cascade answers, and records it all in
``reply.metadata["route"]``.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Literal, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
from pydantic import ValidationError, field_validator

from ragkit.config import ComponentConfig, Field
from ragkit.errors import ConfigError, DataError, ProviderError
from ragkit.query_features import FEATURE_NAMES, QueryFeatures, extract_features
from ragkit.types import Delta, Hit, Message, Reply

log = logging.getLogger("ragkit.routing")

LOCAL = "local"
STRONG = "strong"
LABELS = ("simple", "complex")  # simple -> local, complex -> strong
WEIGHTS_FORMAT = "ragkit.routing.logistic/1"


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
            "route": self.route, "generator": self.generator, "score": round(self.score, 4),
            "threshold": round(self.threshold, 4), "features": dict(self.features), "reason": self.reason,
            "fallbacks": list(self.fallbacks),
        }


@runtime_checkable
class Router(Protocol):
    """Decides where a query goes; ``routes`` describes every route it can choose."""

    def decide(self, query: str, features: QueryFeatures | None = None, hits: Sequence[Hit] | None = None) -> RouteDecision: ...

    def routes(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class RoutingExample:
    """A labelled query: ``label`` is "simple" (local is enough) or "complex" (needs the strong model)."""

    query: str
    label: Literal["simple", "complex"]


def _build_config(model: type[ComponentConfig], value: Any, owner: str) -> Any:
    """``value`` (a config, a mapping or None) as ``model``; validation errors become ConfigError naming the field."""
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(dict(value or {}))
    except ValidationError as e:
        problems = "; ".join(f"field {'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"{owner} config is invalid: {problems}") from e


class _Targets(ComponentConfig):
    local_generator: str = Field(LOCAL, min_length=1, max_length=200, description="Generator name for simple queries.")
    strong_generator: str = Field(STRONG, min_length=1, max_length=200, description="Generator name for complex queries.")


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
    rules: tuple[Rule, ...] = Field(DEFAULT_RULES, max_length=200, description="Weighted rules; the score is their clipped sum.")


def _decision(targets: _Targets, score: float, threshold: float, features: QueryFeatures, why: str, fallbacks: tuple[str, ...] = ()) -> RouteDecision:
    strong = score >= threshold
    route, gen = (STRONG, targets.strong_generator) if strong else (LOCAL, targets.local_generator)
    cmp = ">=" if strong else "<"
    return RouteDecision(route, gen, float(score), float(threshold), features.as_dict(), f"score {score:.3f} {cmp} {threshold:.3f}: {why}", fallbacks)


class RuleRouter:
    """Weighted rules on query features; score (clipped to [0, 1]) at or above the threshold -> strong."""

    Config = RuleRouterConfig

    def __init__(self, config: RuleRouterConfig | Mapping[str, Any] | None = None) -> None:
        self.config: RuleRouterConfig = _build_config(RuleRouterConfig, config, "rules router")
        self._index = [(FEATURE_NAMES.index(r.feature), r) for r in self.config.rules]

    @classmethod
    def from_config(cls, config: RuleRouterConfig | Mapping[str, Any], **collaborators: Any) -> RuleRouter:
        return cls(config)

    def decide(self, query: str, features: QueryFeatures | None = None, hits: Sequence[Hit] | None = None) -> RouteDecision:
        f = features or extract_features(query, hits)
        v = f.as_vector()
        fired = [r for i, r in self._index if v[i] >= r.at_least]
        score = min(1.0, max(0.0, sum(r.weight for r in fired)))
        why = ", ".join(f"{r.feature}>={r.at_least:g} ({r.weight:+g})" for r in fired) or "no rule fired"
        return _decision(self.config, score, self.config.threshold, f, why)

    def routes(self) -> list[dict[str, Any]]:
        t = self.config.threshold
        return [
            {"route": LOCAL, "generator": self.config.local_generator, "field": "local_generator", "when": f"rule score < {t:g}"},
            {"route": STRONG, "generator": self.config.strong_generator, "field": "strong_generator", "when": f"rule score >= {t:g}"},
        ]


class ClassifierRouterConfig(_Targets):
    threshold: float | None = Field(None, ge=0, le=1, description="Probability at or above which a query goes strong; None: the weights file's calibrated value, else 0.5.")
    weights_path: str | None = Field(None, max_length=4096, description="JSON weights written by `ragkit route train`.")
    # Both penalties chosen by 5x5-fold cross-validation on the SQuAD/HotpotQA training split (docs/routing.md).
    l2: float = Field(10.0, ge=0, le=10_000, description="L2 penalty on the standardised feature coefficients.")
    embedding_l2: float = Field(20.0, ge=0, le=100_000, description="L2 penalty on the standardised query-embedding coefficients.")
    use_query_embedding: bool = Field(False, description="Append the query embedding (collaborator 'embedder') to the features.")
    max_iter: int = Field(50, ge=1, le=1000, description="Newton steps at most.")


def check_examples(examples: Sequence[RoutingExample], source: str = "training data") -> None:
    """ConfigError unless both labels occur in ``examples``."""
    for label in LABELS:
        if not any(e.label == label for e in examples):
            raise ConfigError(f"{source} has no examples with label {label!r} (field 'label'); a router needs both {LABELS}")


def load_examples(path: str | Path) -> list[RoutingExample]:
    """Read JSONL lines ``{"query": ..., "label": "simple"|"complex"}``; bad lines raise DataError naming the line."""
    from ragkit.evaluation import read_jsonl

    p = Path(path)
    if not p.is_file():
        raise DataError("cannot read routing examples: no such file", path=str(p))
    out: list[RoutingExample] = []
    for n, row in read_jsonl(p):
        if not isinstance(row.get("query"), str) or not row["query"].strip():
            raise DataError("expected an object with a non-empty string field 'query'", path=str(p), line=n)
        if row.get("label") not in LABELS:
            raise DataError(f"field 'label' must be one of {LABELS}, got {row.get('label')!r}", path=str(p), line=n)
        out.append(RoutingExample(row["query"], row["label"]))
    return out


def embed_function(embedder: Any) -> Callable[[Sequence[str]], Any]:
    """The sync ``encode(texts) -> (n, dim)`` of an embedder (or of the embedder it wraps as ``inner``)."""
    for candidate in (embedder, getattr(embedder, "inner", None)):
        encode = getattr(candidate, "encode", None)
        if callable(encode):
            return encode
    raise ConfigError(f"use_query_embedding needs an embedder with a sync encode(texts) (e.g. OnnxMiniLMEmbedder); got {type(embedder).__name__}")


class ClassifierRouter:
    """Logistic regression (numpy, Newton steps) on standardised features, plus an optional query embedding.

    ``embed`` is a sync callable text -> vector; when given, its output is appended to the features for both
    training and deciding, and the weights file records its dimension. A caller that already embedded the query
    (for retrieval) passes the vector as ``query_vector`` and no second embedding is computed.
    """

    Config = ClassifierRouterConfig

    def __init__(self, config: ClassifierRouterConfig | Mapping[str, Any] | None = None, *, embed: Callable[[str], Sequence[float]] | None = None,
                 embed_batch: Callable[[Sequence[str]], Any] | None = None) -> None:
        self.config: ClassifierRouterConfig = _build_config(ClassifierRouterConfig, config, "classifier router")
        self.embed = embed
        self.embed_batch = embed_batch
        self.threshold = 0.5 if self.config.threshold is None else self.config.threshold
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.coef: np.ndarray | None = None
        self.intercept = 0.0
        self.embedding_dim = 0
        if self.config.weights_path:
            self.load(self.config.weights_path)

    @classmethod
    def from_config(cls, config: ClassifierRouterConfig | Mapping[str, Any], **collaborators: Any) -> ClassifierRouter:
        """Collaborators: ``embedder`` (used when ``use_query_embedding``) or a ready ``embed`` callable."""
        cfg = _build_config(ClassifierRouterConfig, config, "classifier router")
        embed = collaborators.get("embed")
        embedder = collaborators.get("embedder")
        batch = None
        if cfg.use_query_embedding and embed is None:
            if embedder is None:
                raise ConfigError("classifier router: use_query_embedding is true but no collaborator 'embedder' was passed")
            batch = embed_function(embedder)
            embed = lambda text: batch([text])[0]  # noqa: E731
        elif not cfg.use_query_embedding:
            embed = None
        router = cls(cfg, embed=embed, embed_batch=batch)
        if router.coef is not None and (router.embedding_dim > 0) != (router.embed is not None):
            raise ConfigError(f"classifier weights {cfg.weights_path} have embedding_dim {router.embedding_dim}, which does not match "
                              f"use_query_embedding={cfg.use_query_embedding} (field use_query_embedding)")
        return router

    def _raw(self, query: str, features: QueryFeatures | None = None, hits: Sequence[Hit] | None = None,
             query_vector: Sequence[float] | None = None) -> tuple[np.ndarray, QueryFeatures]:
        f = features or extract_features(query, hits)
        v = f.as_vector().astype(np.float64)
        if query_vector is not None:
            v = np.concatenate([v, np.asarray(query_vector, dtype=np.float64).ravel()])
        elif self.embed is not None:
            v = np.concatenate([v, np.asarray(self.embed(query), dtype=np.float64).ravel()])
        return v, f

    def feature_matrix(self, queries: Sequence[str]) -> np.ndarray:
        """Features (+ the embedding, in one batch when ``embed_batch`` is set) of ``queries``, one row each."""
        X = np.stack([extract_features(q).as_vector() for q in queries]).astype(np.float64)
        if self.embed_batch is not None:
            E = np.asarray(self.embed_batch(list(queries)), dtype=np.float64)
        elif self.embed is not None:
            E = np.stack([np.asarray(self.embed(q), dtype=np.float64).ravel() for q in queries])
        else:
            return X
        return np.hstack([X, E.reshape(len(queries), -1)])

    def train(self, examples: Sequence[RoutingExample]) -> float:
        """Fit on ``examples``; returns training accuracy at threshold 0.5."""
        check_examples(examples)
        X = self.feature_matrix([e.query for e in examples])
        y = np.array([1.0 if e.label == "complex" else 0.0 for e in examples])
        self.mean, self.scale, self.coef, self.intercept = fit_logistic(X, y, len(FEATURE_NAMES), self.config.l2, self.config.embedding_l2, self.config.max_iter)
        self.embedding_dim = X.shape[1] - len(FEATURE_NAMES)
        return float(np.mean((self._scores(X) >= 0.5) == (y == 1)))

    def _scores(self, X: np.ndarray) -> np.ndarray:
        if self.coef is None or self.mean is None or self.scale is None:
            raise ConfigError("classifier router has no weights: train it or set weights_path")
        if X.shape[1] != self.coef.shape[0]:
            raise ConfigError(f"classifier weights expect {self.coef.shape[0]} inputs, got {X.shape[1]} (embedding_dim {self.embedding_dim} in the weights file)")
        return _sigmoid(((X - self.mean) / self.scale) @ self.coef + self.intercept)

    def probabilities(self, queries: Sequence[str]) -> np.ndarray:
        """P(complex) for each of ``queries``, embedding them in one batch when an ``embed_batch`` is set."""
        return self._scores(self.feature_matrix(queries))

    def probability(self, query: str, features: QueryFeatures | None = None, hits: Sequence[Hit] | None = None,
                    query_vector: Sequence[float] | None = None) -> float:
        """P(complex) for ``query``."""
        return self._score(self._raw(query, features, hits, query_vector)[0])

    def _score(self, v: np.ndarray) -> float:
        if self.coef is None or self.mean is None or self.scale is None:
            raise ConfigError("classifier router has no weights: train it or set weights_path")
        if v.shape[0] != self.coef.shape[0]:
            raise ConfigError(f"classifier weights expect {self.coef.shape[0]} inputs, got {v.shape[0]} (embedding_dim {self.embedding_dim} in the weights file)")
        return float(_sigmoid(float(((v - self.mean) / self.scale) @ self.coef) + self.intercept))

    def calibrate(self, examples: Sequence[RoutingExample], target_strong_share: float) -> float:
        """Set and return the threshold that sends ``target_strong_share`` of ``examples`` to the strong route."""
        if not 0.0 <= target_strong_share <= 1.0:
            raise ConfigError(f"target_strong_share must be in [0, 1], got {target_strong_share}")
        if not examples:
            raise ConfigError("calibration data has no examples")
        scores = np.sort(self.probabilities([e.query for e in examples]))[::-1]
        k = int(round(target_strong_share * len(scores)))
        if k <= 0:
            t = (scores[0] + 1.0) / 2
        elif k >= len(scores):
            t = scores[-1] / 2
        else:
            t = (scores[k - 1] + scores[k]) / 2  # exactly k scores at or above, ties aside
        self.threshold = float(min(1.0, max(0.0, t)))
        return self.threshold

    def decide(self, query: str, features: QueryFeatures | None = None, hits: Sequence[Hit] | None = None, *,
               query_vector: Sequence[float] | None = None) -> RouteDecision:
        v, f = self._raw(query, features, hits, query_vector)
        p = self._score(v)
        contrib = ((v - self.mean) / self.scale) * self.coef  # type: ignore[operator]
        top = np.argsort(-np.abs(contrib[: len(FEATURE_NAMES)]))[:3]
        why = "logistic; top features " + ", ".join(f"{FEATURE_NAMES[i]} ({contrib[i]:+.2f})" for i in top)
        return _decision(self.config, p, self.threshold, f, why)

    def routes(self) -> list[dict[str, Any]]:
        t = self.threshold
        return [
            {"route": LOCAL, "generator": self.config.local_generator, "field": "local_generator", "when": f"P(complex) < {t:.3f}"},
            {"route": STRONG, "generator": self.config.strong_generator, "field": "strong_generator", "when": f"P(complex) >= {t:.3f}"},
        ]

    def save(self, path: str | Path) -> None:
        """Write the weights, standardisation and threshold as JSON."""
        if self.coef is None or self.mean is None or self.scale is None:
            raise ConfigError("classifier router has no weights to save: train it first")
        data = {
            "format": WEIGHTS_FORMAT, "feature_names": list(FEATURE_NAMES), "embedding_dim": self.embedding_dim,
            "mean": self.mean.tolist(), "scale": self.scale.tolist(), "coef": self.coef.tolist(),
            "intercept": self.intercept, "threshold": self.threshold, "l2": self.config.l2,
            "embedding_l2": self.config.embedding_l2,
        }
        Path(path).write_text(json.dumps(data, indent=1), encoding="utf-8")

    def load(self, path: str | Path) -> None:
        """Read weights written by ``save``; a config threshold, when set, wins over the file's."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"cannot read classifier weights {path} (field weights_path): {e}") from e
        if not isinstance(data, dict) or data.get("format") != WEIGHTS_FORMAT:
            raise ConfigError(f"{path} is not a {WEIGHTS_FORMAT} weights file")
        if data.get("feature_names") != list(FEATURE_NAMES):
            raise ConfigError(f"{path} was trained on other features than this ragkit computes; retrain with `ragkit route train`")
        n = len(FEATURE_NAMES) + int(data.get("embedding_dim", 0))
        try:
            mean, scale, coef = (np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "coef"))
            threshold = float(data["threshold"])
            intercept = float(data["intercept"])
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"{path}: weights file is missing or has a malformed field: {e}") from e
        if not (mean.shape == scale.shape == coef.shape == (n,)) or not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"{path}: expected {n} means, scales and coefficients and a threshold in [0, 1]")
        self.mean, self.scale, self.coef, self.intercept = mean, scale, coef, intercept
        self.embedding_dim = n - len(FEATURE_NAMES)
        if self.config.threshold is None:
            self.threshold = threshold


def fit_logistic(X: np.ndarray, y: np.ndarray, n_features: int, l2: float, embedding_l2: float,
                 max_iter: int = 50) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Penalised logistic regression by Newton steps on standardised ``X``: (mean, scale, coef, intercept).

    Columns from ``n_features`` on (the embedding) get ``embedding_l2``, the others ``l2``; the intercept is free.
    """
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    scale = np.where(std > 1e-9, std, 1.0)  # constant features (e.g. no hits at training time) stay 0
    Z = np.hstack([(X - mean) / scale, np.ones((len(X), 1))])
    w = np.zeros(Z.shape[1])
    penalty = np.full(Z.shape[1], l2)
    penalty[n_features:-1] = embedding_l2
    penalty[-1] = 0.0
    for _ in range(max_iter):
        p = _sigmoid(Z @ w)
        grad = Z.T @ (p - y) + penalty * w
        hess = (Z.T * (p * (1 - p))) @ Z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return mean, scale, w[:-1], float(w[-1])


def _sigmoid(x: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


DEFAULT_ABSTAIN_PATTERNS: tuple[str, ...] = (
    r"\bI (?:do not|don't|don’t) know\b", r"\bI(?:'m| am) not sure\b", r"\bcannot (?:be )?(?:answer|determine|find)",
    r"\bcan't (?:answer|determine|find)", r"\bnot (?:mentioned|stated|found|given) in the (?:sources|context|documents?)",
    r"\b(?:sources|context) do(?:es)? not (?:say|mention|contain)", r"\bno information\b",
    r"\bich wei(?:ß|ss) (?:es )?nicht\b", r"\bnicht in den (?:Quellen|Dokumenten|Unterlagen)\b",
    r"\b(?:Quellen|Dokumente) (?:enthalten|nennen) (?:dazu )?(?:keine|nichts)\b", r"\bkeine (?:Angaben|Informationen)\b",
    r"\bkann (?:ich )?(?:das |dies )?nicht (?:beantworten|sagen)\b",
)


class CascadeRouterConfig(_Targets):
    min_confidence: float = Field(0.35, ge=0, le=1, description="Escalate when exp(mean_logprob) of the local answer is below this.")
    abstain_patterns: tuple[str, ...] = Field(DEFAULT_ABSTAIN_PATTERNS, max_length=100, description="Regexes (case-insensitive) that mark an abstaining answer.")
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

    def __init__(self, config: CascadeRouterConfig | Mapping[str, Any] | None = None, *, first_stage: Router | None = None,
                 validate: Callable[[Reply], bool] | None = None) -> None:
        self.config: CascadeRouterConfig = _build_config(CascadeRouterConfig, config, "cascade router")
        self.first_stage = first_stage
        self.validate = validate
        self._abstain = re.compile("|".join(f"(?:{p})" for p in self.config.abstain_patterns), re.IGNORECASE) if self.config.abstain_patterns else None

    @classmethod
    def from_config(cls, config: CascadeRouterConfig | Mapping[str, Any], **collaborators: Any) -> CascadeRouter:
        return cls(config, first_stage=collaborators.get("first_stage"), validate=collaborators.get("validate"))

    def decide(self, query: str, features: QueryFeatures | None = None, hits: Sequence[Hit] | None = None) -> RouteDecision:
        f = features or extract_features(query, hits)
        c = self.config
        if self.first_stage is not None:
            first = self.first_stage.decide(query, f, hits)
            if first.route == STRONG:
                return replace(first, generator=c.strong_generator, reason=f"first stage: {first.reason}")
            score = first.score
        else:
            score = 0.0
        reason = f"local first; escalate to {c.strong_generator} on abstention, failed validation or confidence < {c.min_confidence:g}"
        return RouteDecision(LOCAL, c.local_generator, score, c.min_confidence, f.as_dict(), reason, (c.strong_generator,))

    def escalation_reason(self, reply: Reply) -> str | None:
        """Why the local ``reply`` should be escalated, or None to keep it."""
        if self.config.escalate_on_abstain and self._abstain is not None:
            m = self._abstain.search(reply.text)
            if m:
                return f"abstained ({m.group(0)!r})"
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
            {"route": LOCAL, "generator": c.local_generator, "field": "local_generator", "when": "always first" + (" unless the first stage says strong" if self.first_stage else "")},
            {"route": STRONG, "generator": c.strong_generator, "field": "strong_generator", "when": f"local answer abstains, fails validation or exp(mean_logprob) < {c.min_confidence:g}"},
        ]
        return rows


def routing_table(router: Any) -> list[dict[str, Any]]:
    """Rows describing every route (for ``ragkit plan``); a ``RoutedGenerator`` adds its fallback chains."""
    if isinstance(router, RoutedGenerator):
        return [{**row, "fallbacks": router.chain_after(row["generator"])} for row in router.router.routes()]
    return [{**row, "fallbacks": []} for row in router.routes()]


class Price(ComponentConfig):
    """A generator's price per million tokens."""

    input_per_mtok: float = Field(..., ge=0, le=10_000, description="Price per 1M input tokens.")
    output_per_mtok: float = Field(..., ge=0, le=10_000, description="Price per 1M output tokens.")

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6


class RoutedGeneratorConfig(ComponentConfig):
    fallback_chain: tuple[str, ...] = Field((), max_length=50, description="Generator names tried, in order, after the chosen one fails.")
    prices: dict[str, Price] = Field(default_factory=dict, description="Generator name -> price, for the cost estimate in metadata.")


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

    def __init__(self, router: Router, generators: Mapping[str, Any], fallback_chain: Sequence[str] = (), *,
                 prices: Mapping[str, Price | Mapping[str, float]] | None = None) -> None:
        cfg = _build_config(RoutedGeneratorConfig, {"fallback_chain": tuple(fallback_chain), "prices": dict(prices or {})}, "routed generator")
        self.config: RoutedGeneratorConfig = cfg
        self.router = router
        self.generators = dict(generators)
        if not self.generators:
            raise ConfigError("routed generator needs at least one generator (field generators)")
        defined = ", ".join(sorted(self.generators))
        for row in router.routes():
            if row["generator"] not in self.generators:
                raise ConfigError(f"route {row['route']!r} (field {row.get('field', 'generator')}) names generator {row['generator']!r}, which is not defined; defined: {defined}")
        for name in cfg.fallback_chain:
            if name not in self.generators:
                raise ConfigError(f"field fallback_chain names generator {name!r}, which is not defined; defined: {defined}")
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

    async def _call_chain(self, first: str, messages: Sequence[Message], kwargs: dict[str, Any], trace: _Trace,
                          skip: Sequence[str] = ()) -> tuple[Reply, str]:
        order = [first, *(n for n in self.chain_after(first) if n not in skip)]
        for i, name in enumerate(order):
            try:
                reply = await self.generators[name].generate(messages, **kwargs)
            except (ProviderError, ConfigError) as e:
                # Fallback on failure after the generator's own retries, or when it is not configured (no API key).
                trace.fallbacks_taken.append({"generator": name, "error": type(e).__name__, "message": str(e)})
                log.warning("generator %s failed (%s); %s", name, type(e).__name__, "falling back" if i + 1 < len(order) else "no fallback left")
                if i + 1 == len(order):
                    raise
                continue
            call: dict[str, Any] = {"generator": name, "input_tokens": reply.usage.input_tokens, "output_tokens": reply.usage.output_tokens}
            price = self.config.prices.get(name)
            if price is not None:
                call["cost_usd"] = price.cost(reply.usage.input_tokens, reply.usage.output_tokens)
            trace.calls.append(call)
            return reply, name
        raise AssertionError("unreachable")  # pragma: no cover

    def _metadata(self, trace: _Trace, used: str) -> dict[str, Any]:
        d = trace.decision
        meta: dict[str, Any] = {
            **d.as_dict(), "planned_generator": d.generator, "generator": used, "overhead_ms": round(trace.overhead_ms, 4),
            "fallbacks": self.chain_after(d.generator), "escalate_to": list(d.fallbacks),
            "fallbacks_taken": trace.fallbacks_taken, "escalations": trace.escalations, "calls": trace.calls,
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

    async def generate(self, messages: Sequence[Message], *, max_tokens: int | None = None, tools: Sequence[Any] | None = None,
                       json_schema: Mapping[str, Any] | None = None, hits: Sequence[Hit] | None = None,
                       query: str | None = None) -> Reply:
        """Route, call, fall back, escalate; ``reply.metadata["route"]`` says what happened and why."""
        trace = self._decide(messages, hits, query)
        kwargs = {"max_tokens": max_tokens, "tools": tools, "json_schema": json_schema}
        reply, used = await self._call_chain(trace.decision.generator, messages, kwargs, trace)
        escalate = getattr(self.router, "escalation_reason", None)
        if trace.decision.route == LOCAL and escalate is not None:
            reason = escalate(reply)
            if reason is not None:
                target = trace.decision.fallbacks[0] if trace.decision.fallbacks else used
                step = {"from": used, "to": target, "reason": reason}
                trace.escalations.append(step)
                try:
                    reply, used = await self._call_chain(target, messages, kwargs, trace, skip=(used,))
                except (ProviderError, ConfigError) as e:
                    # The local answer is still better than none.
                    step["failed"] = type(e).__name__
                    log.warning("escalation to %s failed (%s); keeping the local answer", target, type(e).__name__)
        return replace(reply, metadata={**reply.metadata, "route": self._metadata(trace, used)})

    async def stream(self, messages: Sequence[Message], *, max_tokens: int | None = None, tools: Sequence[Any] | None = None,
                     hits: Sequence[Hit] | None = None, query: str | None = None) -> AsyncIterator[Delta]:
        """Stream from the routed generator; a cascade must judge the whole answer, so it yields it in one piece."""
        if getattr(self.router, "escalation_reason", None) is not None:
            reply = await self.generate(messages, max_tokens=max_tokens, tools=tools, hits=hits, query=query)
            yield Delta(text=reply.text)
            yield Delta(reply=reply)
            return
        trace = self._decide(messages, hits, query)
        order = [trace.decision.generator, *self.chain_after(trace.decision.generator)]
        for i, name in enumerate(order):
            started = False
            try:
                async for delta in self.generators[name].stream(messages, max_tokens=max_tokens, tools=tools):
                    started = True
                    if delta.reply is not None:
                        r = delta.reply
                        trace.calls.append({"generator": name, "input_tokens": r.usage.input_tokens, "output_tokens": r.usage.output_tokens})
                        delta = replace(delta, reply=replace(r, metadata={**r.metadata, "route": self._metadata(trace, name)}))
                    yield delta
                return
            except (ProviderError, ConfigError) as e:
                if started or i + 1 == len(order):
                    raise
                trace.fallbacks_taken.append({"generator": name, "error": type(e).__name__, "message": str(e)})

__all__ = [
    "LOCAL", "STRONG", "LABELS", "RouteDecision", "Router", "RoutingExample", "Rule", "DEFAULT_RULES",
    "RuleRouter", "ClassifierRouter", "CascadeRouter", "RoutedGenerator", "Price", "routing_table",
    "load_examples", "check_examples", "DEFAULT_ABSTAIN_PATTERNS", "embed_function", "fit_logistic",
]
