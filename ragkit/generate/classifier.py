"""A trained router: logistic regression on query features (and optionally the query embedding), calibrated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ragkit.component import Field
from ragkit.errors import ConfigError, DataError
from ragkit.generate.query_features import FEATURE_NAMES, QueryFeatures, extract_features
from ragkit.generate.rules import (
    LABELS,
    LOCAL,
    STRONG,
    RouteDecision,
    RoutingExample,
    _build_config,
    _decision,
    _Targets,
)
from ragkit.types import Chunk, Hit

WEIGHTS_FORMAT = "ragkit.routing.logistic/1"


class ClassifierRouterConfig(_Targets):
    threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Probability at or above which a query goes strong; None: the weights file's calibrated value, "
        "else 0.5.",
    )
    weights_path: str | None = Field(None, max_length=4096, description="JSON weights written by `ragkit route train`.")
    # Both penalties chosen by 5x5-fold cross-validation on the SQuAD/HotpotQA training split (docs/routing.md).
    l2: float = Field(10.0, ge=0, le=10_000, description="L2 penalty on the standardised feature coefficients.")
    embedding_l2: float = Field(
        20.0, ge=0, le=100_000, description="L2 penalty on the standardised query-embedding coefficients."
    )
    use_query_embedding: bool = Field(
        False, description="Append the query embedding (collaborator 'embedder') to the features."
    )
    max_iter: int = Field(50, ge=1, le=1000, description="Newton steps at most.")


def check_examples(examples: Sequence[RoutingExample], source: str = "training data") -> None:
    """ConfigError unless both labels occur in ``examples``."""
    for label in LABELS:
        if not any(e.label == label for e in examples):
            raise ConfigError(
                f"{source} has no examples with label {label!r} (field 'label'); a router needs both {LABELS}"
            )


def hits_from_scores(rows: Any, *, path: str = "", line: int | None = None) -> tuple[Hit, ...]:
    """Hits carrying only what the hit features read (doc id, score, per-retriever scores), from
    ``[{"doc_id", "score", "rank_scores"}]`` as ``ragkit eval`` details write them."""
    if rows is None:
        return ()
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DataError("field 'hits' must be a list of objects {doc_id, score, rank_scores}", path=path, line=line)
    out = []
    for i, r in enumerate(rows):
        try:
            score = float(r.get("score", 0.0))
            ranks = {str(k): float(v) for k, v in (r.get("rank_scores") or {}).items()}
        except (TypeError, ValueError, AttributeError) as e:
            raise DataError(f"field 'hits[{i}]' has a score that is not a number ({e})", path=path, line=line) from e
        doc = str(r.get("doc_id", i))
        out.append(Hit(Chunk(f"{doc}#{i}", doc, "", 0, 0), score, ranks))
    return tuple(out)


def load_examples(path: str | Path) -> list[RoutingExample]:
    """Read JSONL lines ``{"query": ..., "label": "simple"|"complex", "hits": [...]?}`` (``ragkit route
    build-data`` writes them); bad lines raise DataError naming the line."""
    from ragkit.jsonl import read_jsonl

    p = Path(path)
    if not p.is_file():
        raise DataError("cannot read routing examples: no such file", path=str(p))
    out: list[RoutingExample] = []
    for n, row in read_jsonl(p):
        if not isinstance(row.get("query"), str) or not row["query"].strip():
            raise DataError("expected an object with a non-empty string field 'query'", path=str(p), line=n)
        if row.get("label") not in LABELS:
            raise DataError(f"field 'label' must be one of {LABELS}, got {row.get('label')!r}", path=str(p), line=n)
        out.append(RoutingExample(row["query"], row["label"], hits_from_scores(row.get("hits"), path=str(p), line=n)))
    return out


def embed_function(embedder: Any) -> Callable[[Sequence[str]], Any]:
    """The sync ``encode(texts) -> (n, dim)`` of an embedder (or of the embedder it wraps as ``inner``)."""
    for candidate in (embedder, getattr(embedder, "inner", None)):
        encode = getattr(candidate, "encode", None)
        if callable(encode):
            return encode
    raise ConfigError(
        "use_query_embedding needs an embedder with a sync encode(texts) (e.g. OnnxMiniLMEmbedder); "
        f"got {type(embedder).__name__}"
    )


class ClassifierRouter:
    """Logistic regression (numpy, Newton steps) on standardised features, plus an optional query embedding.

    ``embed`` is a sync callable text -> vector; when given, its output is appended to the features for both
    training and deciding, and the weights file records its dimension. A caller that already embedded the query
    (for retrieval) passes the vector as ``query_vector`` and no second embedding is computed.
    """

    Config = ClassifierRouterConfig

    def __init__(
        self,
        config: ClassifierRouterConfig | Mapping[str, Any] | None = None,
        *,
        embed: Callable[[str], Sequence[float]] | None = None,
        embed_batch: Callable[[Sequence[str]], Any] | None = None,
    ) -> None:
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
                raise ConfigError(
                    "classifier router: use_query_embedding is true but no collaborator 'embedder' was passed"
                )
            batch = embed_function(embedder)
            embed = lambda text: batch([text])[0]  # noqa: E731
        elif not cfg.use_query_embedding:
            embed = None
        router = cls(cfg, embed=embed, embed_batch=batch)
        if router.coef is not None and (router.embedding_dim > 0) != (router.embed is not None):
            raise ConfigError(
                f"classifier weights {cfg.weights_path} have embedding_dim {router.embedding_dim}, which does not "
                f"match use_query_embedding={cfg.use_query_embedding} (field use_query_embedding)"
            )
        return router

    def _raw(
        self,
        query: str,
        features: QueryFeatures | None = None,
        hits: Sequence[Hit] | None = None,
        query_vector: Sequence[float] | None = None,
    ) -> tuple[np.ndarray, QueryFeatures]:
        f = features or extract_features(query, hits)
        v = f.as_vector().astype(np.float64)
        if query_vector is not None:
            v = np.concatenate([v, np.asarray(query_vector, dtype=np.float64).ravel()])
        elif self.embed is not None:
            v = np.concatenate([v, np.asarray(self.embed(query), dtype=np.float64).ravel()])
        return v, f

    def feature_matrix(self, queries: Sequence[str], hits: Sequence[Sequence[Hit]] | None = None) -> np.ndarray:
        """Features (+ the embedding, in one batch when ``embed_batch`` is set) of ``queries``, one row each;
        ``hits[i]`` are query i's retrieval hits, for the hit features."""
        per_query = hits if hits is not None else [()] * len(queries)
        X = np.stack([extract_features(q, h or None).as_vector() for q, h in zip(queries, per_query)])
        X = X.astype(np.float64)
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
        X = self.examples_matrix(examples)
        y = np.array([1.0 if e.label == "complex" else 0.0 for e in examples])
        self.mean, self.scale, self.coef, self.intercept = fit_logistic(
            X, y, len(FEATURE_NAMES), self.config.l2, self.config.embedding_l2, self.config.max_iter
        )
        self.embedding_dim = X.shape[1] - len(FEATURE_NAMES)
        return float(np.mean((self._scores(X) >= 0.5) == (y == 1)))

    def _scores(self, X: np.ndarray) -> np.ndarray:
        if self.coef is None or self.mean is None or self.scale is None:
            raise ConfigError("classifier router has no weights: train it or set weights_path")
        if X.shape[1] != self.coef.shape[0]:
            raise ConfigError(
                f"classifier weights expect {self.coef.shape[0]} inputs, got {X.shape[1]} "
                f"(embedding_dim {self.embedding_dim} in the weights file)"
            )
        return _sigmoid(((X - self.mean) / self.scale) @ self.coef + self.intercept)

    def examples_matrix(self, examples: Sequence[RoutingExample]) -> np.ndarray:
        """``feature_matrix`` of labelled examples, with their hits."""
        return self.feature_matrix([e.query for e in examples], [e.hits for e in examples])

    def probabilities(self, queries: Sequence[str], hits: Sequence[Sequence[Hit]] | None = None) -> np.ndarray:
        """P(complex) for each of ``queries``, embedding them in one batch when an ``embed_batch`` is set."""
        return self._scores(self.feature_matrix(queries, hits))

    def probability(
        self,
        query: str,
        features: QueryFeatures | None = None,
        hits: Sequence[Hit] | None = None,
        query_vector: Sequence[float] | None = None,
    ) -> float:
        """P(complex) for ``query``."""
        return self._score(self._raw(query, features, hits, query_vector)[0])

    def _score(self, v: np.ndarray) -> float:
        if self.coef is None or self.mean is None or self.scale is None:
            raise ConfigError("classifier router has no weights: train it or set weights_path")
        if v.shape[0] != self.coef.shape[0]:
            raise ConfigError(
                f"classifier weights expect {self.coef.shape[0]} inputs, got {v.shape[0]} "
                f"(embedding_dim {self.embedding_dim} in the weights file)"
            )
        return float(_sigmoid(float(((v - self.mean) / self.scale) @ self.coef) + self.intercept))

    def calibrate(self, examples: Sequence[RoutingExample], target_strong_share: float) -> float:
        """Set and return the threshold that sends ``target_strong_share`` of ``examples`` to the strong route."""
        if not 0.0 <= target_strong_share <= 1.0:
            raise ConfigError(f"target_strong_share must be in [0, 1], got {target_strong_share}")
        if not examples:
            raise ConfigError("calibration data has no examples")
        scores = np.sort(self._scores(self.examples_matrix(examples)))[::-1]
        k = int(round(target_strong_share * len(scores)))
        if k <= 0:
            t = (scores[0] + 1.0) / 2
        elif k >= len(scores):
            t = scores[-1] / 2
        else:
            t = (scores[k - 1] + scores[k]) / 2  # exactly k scores at or above, ties aside
        self.threshold = float(min(1.0, max(0.0, t)))
        return self.threshold

    def calibrate_local_accuracy(self, examples: Sequence[RoutingExample], target_accuracy: float) -> float:
        """Set and return the threshold that keeps the most ``examples`` local while the local model is right on at
        least ``target_accuracy`` of those kept (labels: "simple" = the local answer was right)."""
        if not 0.0 <= target_accuracy <= 1.0:
            raise ConfigError(f"target_local_accuracy must be in [0, 1], got {target_accuracy}")
        if not examples:
            raise ConfigError("calibration data has no examples")
        scores = self._scores(self.examples_matrix(examples))
        order = np.argsort(scores, kind="stable")
        right = np.cumsum([examples[i].label == "simple" for i in order])
        kept = np.arange(1, len(order) + 1)
        ok = np.flatnonzero(right / kept >= target_accuracy)
        # Only cut between distinct scores, so the threshold keeps exactly the counted prefix.
        ok = [k for k in ok if k + 1 == len(order) or scores[order[k]] < scores[order[k + 1]]]
        if not ok:
            t = scores[order[0]] / 2  # nothing meets the target: everything goes strong
        else:
            k = ok[-1]
            t = 1.0 if k + 1 == len(order) else (scores[order[k]] + scores[order[k + 1]]) / 2
        self.threshold = float(min(1.0, max(0.0, t)))
        return self.threshold

    def decide(
        self,
        query: str,
        features: QueryFeatures | None = None,
        hits: Sequence[Hit] | None = None,
        *,
        query_vector: Sequence[float] | None = None,
    ) -> RouteDecision:
        v, f = self._raw(query, features, hits, query_vector)
        p = self._score(v)
        contrib = ((v - self.mean) / self.scale) * self.coef  # type: ignore[operator]
        top = np.argsort(-np.abs(contrib[: len(FEATURE_NAMES)]))[:3]
        why = "logistic; top features " + ", ".join(f"{FEATURE_NAMES[i]} ({contrib[i]:+.2f})" for i in top)
        return _decision(self.config, p, self.threshold, f, why)

    def routes(self) -> list[dict[str, Any]]:
        t = self.threshold
        return [
            {
                "route": LOCAL,
                "generator": self.config.local_generator,
                "field": "local_generator",
                "when": f"P(complex) < {t:.3f}",
            },
            {
                "route": STRONG,
                "generator": self.config.strong_generator,
                "field": "strong_generator",
                "when": f"P(complex) >= {t:.3f}",
            },
        ]

    def save(self, path: str | Path) -> None:
        """Write the weights, standardisation and threshold as JSON."""
        if self.coef is None or self.mean is None or self.scale is None:
            raise ConfigError("classifier router has no weights to save: train it first")
        data = {
            "format": WEIGHTS_FORMAT,
            "feature_names": list(FEATURE_NAMES),
            "embedding_dim": self.embedding_dim,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "threshold": self.threshold,
            "l2": self.config.l2,
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
            raise ConfigError(
                f"{path} was trained on other features than this ragkit computes; retrain with `ragkit route train`"
            )
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


def fit_logistic(
    X: np.ndarray, y: np.ndarray, n_features: int, l2: float, embedding_l2: float, max_iter: int = 50
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
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


__all__ = [
    "ClassifierRouter",
    "ClassifierRouterConfig",
    "WEIGHTS_FORMAT",
    "load_examples",
    "check_examples",
    "embed_function",
    "fit_logistic",
    "hits_from_scores",
]
