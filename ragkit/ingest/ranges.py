"""Planning chunk bodies on token boundaries: token windows and recursive (paragraph, sentence, word, token) packing.

Each planner tokenizes a text once, plans cuts on token boundaries, then counts each final body (prefix included)
exactly and shrinks it when the plan was optimistic, so ``prefix + body`` never exceeds ``max_tokens``. ``segments``
cuts a long text into spans planned one at a time, so the memory a plan takes does not grow with the document.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_left, bisect_right
from typing import Iterator, Sequence

from ragkit.errors import ConfigError, DataError
from ragkit.tokens import TiktokenCounter, TiktokenCuts, TokenCounter, exact_count, splits_hold, token_cuts

log = logging.getLogger("ragkit.ingest.chunking")

Range = tuple[int, int]

# Separator patterns for the recursive levels; a piece ends where its separator ends.
_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_SENTENCE = re.compile(r"(?<=[.!?…])\s+|(?<=[。！？；])")
_WORD = re.compile(r"\s+")
_LEVELS = (_PARAGRAPH, _SENTENCE, _WORD)


def _strip(text: str, s: int, e: int) -> Range | None:
    body = text[s:e]
    left = len(body) - len(body.lstrip())
    if left == len(body):
        return None
    return s + left, e - (len(body) - len(body.rstrip()))


def _ntok(cuts: Sequence[int], a: int, b: int) -> int:
    """Planned token count of ``text[a:b]``: tokens starting inside it."""
    n = len(cuts) - 1
    return bisect_left(cuts, b, 0, n) - bisect_left(cuts, a, 0, n)


_BASE_COUNTS: dict[int, tuple[TokenCounter, int]] = {}


def _base_count(counter: TokenCounter) -> int:
    """``counter.count("")``: the special tokens a counter adds to every text, remembered per counter."""
    hit = _BASE_COUNTS.get(id(counter))
    if hit is None or hit[0] is not counter:
        if len(_BASE_COUNTS) >= 64:
            _BASE_COUNTS.clear()
        hit = _BASE_COUNTS[id(counter)] = (counter, counter.count(""))
    return hit[1]


class _Budget:
    """Token accounting for one (counter, max_tokens, prefix): how many planned tokens a body may hold."""

    def __init__(self, counter: TokenCounter, max_tokens: int, prefix: str) -> None:
        self.counter = counter
        self.max_tokens = max_tokens
        self.prefix = prefix
        base = _base_count(counter)
        cost = counter.count(prefix) - base if prefix else 0
        self.tokens = max_tokens - base - cost
        if self.tokens < 1:
            raise ConfigError(f"max_tokens={max_tokens} leaves no room for text after the prefix ({cost} tokens)")
        # Plans count tokens of the whole text; a stripped slice often re-tokenizes one token longer
        # (" Sweyn" is one token, "Sweyn" two), so plan one short and let fit() rarely need a second count.
        self.plan = self.tokens - 1 if self.tokens >= 32 else self.tokens
        # Exact subclasses only: one that overrides count() is counted with its own count().
        self.tiktoken = type(counter) is TiktokenCounter and splits_hold(counter.name)

    def count(self, text: str, a: int, b: int, cuts: Sequence[int]) -> int:
        """``counter.count(prefix + text[a:b])``, cheaper when ``cuts`` came from one tiktoken encode of ``text``."""
        if (
            self.tiktoken
            and isinstance(cuts, TiktokenCuts)
            and cuts.text is text
            and cuts.encoding == self.counter.name
        ):
            return exact_count(self.counter, self.prefix, text, a, b, cuts)  # type: ignore[arg-type]
        return self.counter.count(self.prefix + text[a:b])

    def fit(self, text: str, s: int, e: int, cuts: Sequence[int]) -> tuple[int, Range | None]:
        """The largest end ``<= e`` whose stripped body fits with the prefix, and that stripped body range."""
        while True:
            body = _strip(text, s, e)
            if body is None:
                return e, None
            excess = self.count(text, body[0], body[1], cuts) - self.max_tokens
            if excess <= 0:
                return e, body
            lo, hi = bisect_right(cuts, s), bisect_left(cuts, e)
            if hi > lo:  # drop whole tokens first
                e = cuts[max(lo, hi - excess)]
            elif e - s > 1:  # one token longer than the room left: drop code points
                e -= 1
            else:
                raise DataError(f"max_tokens={self.max_tokens} cannot hold a single character after the prefix")


def _fit_prefix(prefix: str, counter: TokenCounter, max_tokens: int) -> str:
    # A prefix may take at most half the cap, so a long title cannot crowd out the body.
    if not prefix:
        return prefix
    limit = max_tokens // 2
    base = _base_count(counter)
    if counter.count(prefix) - base <= limit:
        return prefix
    spans = counter.spans(prefix)
    cut = spans[limit - 1][1] if 0 < limit <= len(spans) else 0
    while cut > 0 and counter.count(prefix[:cut]) - base > limit:
        cut -= 1
    log.warning("chunk prefix of %d chars cut to %d to stay within %d tokens", len(prefix), cut, limit)
    return prefix[:cut]


def token_windows(
    text: str,
    counter: TokenCounter,
    max_tokens: int,
    *,
    overlap: int = 0,
    prefix: str = "",
    cuts: Sequence[int] | None = None,
) -> list[Range]:
    """Body ranges of consecutive token windows overlapping by ``overlap`` tokens; ``prefix + body`` fits."""
    last = len(text.rstrip())
    if last == 0:
        return []
    budget = _Budget(counter, max_tokens, prefix)
    cuts = token_cuts(text, counter) if cuts is None else cuts
    n = len(cuts) - 1
    overlap = max(0, min(overlap, budget.tokens // 2))  # a larger overlap would crawl one token per chunk
    out: list[Range] = []
    seen: set[Range] = set()  # a start moved past whitespace only can strip to a body already taken
    s = 0
    while True:
        i = bisect_right(cuts, s) - 1
        e, body = budget.fit(text, s, cuts[min(i + budget.plan, n)], cuts)
        if body is not None and body not in seen:
            seen.add(body)
            out.append(body)
        if e >= last:
            return out
        j = bisect_right(cuts, e) - 1
        nxt = cuts[j - overlap] if j - overlap > i else s
        if nxt <= s:  # the window shrank below the overlap: move on by at least one token
            k = bisect_right(cuts, s)
            nxt = min(cuts[k], e) if k <= n else e
        s = nxt


def _pieces(text: str, a: int, b: int, pattern: re.Pattern[str]) -> list[Range]:
    out: list[Range] = []
    prev = a
    for m in pattern.finditer(text, a, b):
        if prev < m.end() < b:
            out.append((prev, m.end()))
            prev = m.end()
    out.append((prev, b))
    return out


def _units(text: str, a: int, b: int, cuts: Sequence[int], limit: int, level: int = 0) -> list[Range]:
    """Split ``text[a:b]`` at the coarsest separators that give pieces of at most ``limit`` planned tokens."""
    if _ntok(cuts, a, b) <= limit:
        return [(a, b)]
    if level == len(_LEVELS):  # no separator left: cut every ``limit`` tokens
        lo, hi = bisect_right(cuts, a), bisect_left(cuts, b)
        bounds = sorted({a, b, *(cuts[k] for k in range(lo + limit - 1, hi, limit))})
        return list(zip(bounds, bounds[1:]))
    out: list[Range] = []
    for pa, pb in _pieces(text, a, b, _LEVELS[level]):
        out.extend(_units(text, pa, pb, cuts, limit, level + 1))
    return out


def recursive_ranges(
    text: str,
    counter: TokenCounter,
    max_tokens: int,
    *,
    prefix: str = "",
    start: int = 0,
    end: int | None = None,
    cuts: Sequence[int] | None = None,
) -> list[Range]:
    """Body ranges of ``text[start:end]`` packed from paragraphs, sentences, words, tokens; ``prefix + body`` fits."""
    end = len(text) if end is None else end
    if not text[start:end].strip():
        return []
    budget = _Budget(counter, max_tokens, prefix)
    whole = _strip(text, start, end)
    if whole is not None:  # the common short text: a bound or one exact count instead of a plan
        bound = getattr(counter, "upper_bound", None)
        most = bound(prefix + text[whole[0] : whole[1]]) if bound is not None else None
        if most is not None and most <= max_tokens:
            return [whole]
        if budget.count(text, whole[0], whole[1], () if cuts is None else cuts) <= max_tokens:
            return [whole]
    cuts = token_cuts(text, counter) if cuts is None else cuts
    units = _units(text, start, end, cuts, budget.plan)
    bounds = [u[0] for u in units] + [end]
    last = start + len(text[start:end].rstrip())
    out: list[Range] = []
    s, idx = start, 0
    while s < last:
        while bounds[idx] <= s:
            idx += 1
        # Greedy: take whole units while the plan fits; fit() trims if the real count disagrees.
        while idx + 1 < len(bounds) and _ntok(cuts, s, bounds[idx + 1]) <= budget.plan:
            idx += 1
        s, body = budget.fit(text, s, bounds[idx], cuts)
        if body is not None:
            out.append(body)
    return out


def segments(text: str, start: int, end: int, size: int) -> Iterator[Range]:
    """Consecutive spans covering ``text[start:end]``, each at most ``size`` characters, cut after a blank line where
    there is one in the span's second half, else after a line end, else after a space, else at ``size``."""
    a = start
    while end - a > size:
        lo, hi = a + size // 2, a + size
        cut = hi
        for sep in ("\n\n", "\n", " "):
            i = text.rfind(sep, lo, hi)
            if i != -1:
                cut = i + len(sep)
                break
        yield a, cut
        a = cut
    if a < end:
        yield a, end


__all__ = ["Range", "token_windows", "recursive_ranges", "segments", "token_cuts"]
