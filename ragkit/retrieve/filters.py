"""The payload filter DSL: one small dict syntax, validated once, translated into each store's filter objects.

{"category": "freezer"}                      exact match (str, int or bool)
{"volume_l": {"gte": 100, "lte": 300}}       range: any of gt, gte, lt, lte
{"manufacturer": {"any": ["A", "B"]}}        match any of the listed values
several keys                                 all must hold (AND)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping

from ragkit.errors import ConfigError

RANGE_OPS = ("gt", "gte", "lt", "lte")
PayloadType = Literal["keyword", "integer", "float", "bool", "text"]


@dataclass(frozen=True, slots=True)
class Condition:
    """One validated condition on a payload field."""

    key: str
    kind: Literal["match", "any", "range"]
    value: Any = None
    bounds: Mapping[str, float] | None = None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _range(key: str, spec: Mapping[str, Any]) -> Condition:
    bounds: dict[str, float] = {}
    for op, v in spec.items():
        if op not in RANGE_OPS:
            raise ConfigError(f"filter {key!r}: unknown operator {op!r}; expected one of any, {', '.join(RANGE_OPS)}")
        if not _is_number(v):
            raise ConfigError(f"filter {key!r}: operator {op!r} needs a finite number, got {v!r}")
        bounds[op] = v
    if "gt" in bounds and "gte" in bounds or "lt" in bounds and "lte" in bounds:
        raise ConfigError(f"filter {key!r}: give at most one lower (gt/gte) and one upper (lt/lte) bound")
    low_op = "gt" if "gt" in bounds else "gte" if "gte" in bounds else None
    high_op = "lt" if "lt" in bounds else "lte" if "lte" in bounds else None
    if low_op and high_op:
        low, high = bounds[low_op], bounds[high_op]
        if low > high or (low == high and (low_op == "gt" or high_op == "lt")):
            raise ConfigError(f"filter {key!r}: impossible range {low_op} {low} and {high_op} {high} (min > max)")
    return Condition(key, "range", bounds=bounds)


def _any(key: str, values: Any) -> Condition:
    if not isinstance(values, (list, tuple)) or not values:
        raise ConfigError(f"filter {key!r}: 'any' needs a non-empty list of strings or integers, got {values!r}")
    if all(isinstance(v, str) for v in values) or all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return Condition(key, "any", value=tuple(values))
    raise ConfigError(f"filter {key!r}: 'any' values must be all strings or all integers, got {values!r}")


def parse_filter(spec: Mapping[str, Any] | None) -> tuple[Condition, ...]:
    """Validate a filter dict; the ConfigError names the bad key or operator."""
    if spec is None:
        return ()
    if not isinstance(spec, Mapping):
        raise ConfigError(f"filter must be a mapping of payload field to condition, got {type(spec).__name__}")
    out = []
    for key, cond in spec.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"filter key {key!r} must be a non-empty string")
        if isinstance(cond, Mapping):
            if not cond:
                raise ConfigError(f"filter {key!r}: empty condition; expected a value, 'any' or range operators")
            if "any" in cond:
                if len(cond) > 1:
                    raise ConfigError(f"filter {key!r}: 'any' cannot be combined with {sorted(set(cond) - {'any'})}")
                out.append(_any(key, cond["any"]))
            else:
                out.append(_range(key, cond))
        elif isinstance(cond, (str, bool)) or (isinstance(cond, int)):
            out.append(Condition(key, "match", value=cond))
        else:
            raise ConfigError(
                f"filter {key!r}: {cond!r} is not a string, integer or bool; use {{'gte': x, 'lte': y}} for numbers"
            )
    return tuple(out)


def matches(spec: Mapping[str, Any] | None, payload: Mapping[str, Any]) -> bool:
    """Whether ``payload`` satisfies the filter (reference semantics, also for stores without native filters)."""
    for c in parse_filter(spec):
        got = payload.get(c.key)
        values = got if isinstance(got, list) else [got]
        if c.kind == "match":
            ok = any(
                v is c.value if isinstance(c.value, bool) else (v == c.value and not isinstance(v, bool))
                for v in values
            )
        elif c.kind == "any":
            ok = any(v in c.value and not isinstance(v, bool) for v in values)
        else:
            ok = any(_is_number(v) and _in_range(v, c.bounds or {}) for v in values)
        if not ok:
            return False
    return True


def _in_range(v: float, b: Mapping[str, float]) -> bool:
    return (
        ("gt" not in b or v > b["gt"])
        and ("gte" not in b or v >= b["gte"])
        and ("lt" not in b or v < b["lt"])
        and ("lte" not in b or v <= b["lte"])
    )


def to_qdrant(
    spec: Mapping[str, Any] | None, models: Any, range_cls: Any, bool_value: Callable[[bool], Any] = bool
) -> Any | None:
    """Build a Qdrant ``Filter`` from ``models`` (qdrant_edge or qdrant_client.models; same names, keyword args).

    ``bool_value`` wraps booleans for bindings that would otherwise read ``True`` as the integer 1.
    """
    conditions = parse_filter(spec)
    if not conditions:
        return None
    must = []
    for c in conditions:
        if c.kind == "match":
            value = bool_value(c.value) if isinstance(c.value, bool) else c.value
            must.append(models.FieldCondition(key=c.key, match=models.MatchValue(value=value)))
        elif c.kind == "any":
            must.append(models.FieldCondition(key=c.key, match=models.MatchAny(any=list(c.value))))
        else:
            must.append(
                models.FieldCondition(key=c.key, range=range_cls(**{k: float(v) for k, v in (c.bounds or {}).items()}))
            )
    return models.Filter(must=must)


__all__ = ["Condition", "PayloadType", "RANGE_OPS", "parse_filter", "matches", "to_qdrant"]
