"""BM25 sparse vectors: an analyzer that keeps product ids whole, and hashed term ids that need no vocabulary.

Documents carry the BM25 term-frequency part, ``tf·(k1+1) / (tf + k1·(1 − b + b·dl/avgdl))``; queries carry
1 per distinct term. A store whose sparse vector has Qdrant's IDF modifier multiplies each query term by its
IDF, so the dot product it ranks by is the BM25 score.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections import Counter

from ragkit.component import ComponentConfig, Field
from ragkit.types import SparseVector

# A compound is word characters joined by - _ . / (LABO-288, MED-COOL-300, 3.5, EN/DE); it is kept whole
# and its parts are emitted too, so "LABO 288" still matches "LABO-288".
_TOKEN = re.compile(r"\w+(?:[-_./]\w+)*", re.UNICODE)
_SPLIT = re.compile(r"[-_./]")
_MEMO_TOKENS = 200_000  # distinct tokens an analyzer remembers before it starts over

STOPWORDS_EN = frozenset(
    "a an and are as at be been but by can do does for from had has have how i if in into is it its of on or "
    "so such than that the their then there these they this to was were what when where which who why will "
    "with would you your".split()
)
STOPWORDS_DE = frozenset(
    "aber als am an auch auf aus bei bin bis bist da dann das dass dem den der des die dies diese dieser doch "
    "du durch ein eine einem einen einer eines er es für hat hatte ich ihr im in ist ja kann mit nach nicht "
    "noch nur ob oder sich sie sind so über um und uns unter vom von vor war was wenn wer wie wir wird zu zum "
    "zur".split()
)
# Plural and inflection endings shared by English and German; stripping them makes "freezers"/"freezer" and
# "Geräte"/"Gerät" meet. Applied until none fits, so every form of a word reaches the same stem.
_SUFFIXES = ("ies", "es", "en", "s", "e")


class Bm25Analyzer:
    """Text → terms: NFKC, casefold, stopwords (English + German), compounds whole plus parts, light stemming."""

    def __init__(
        self, *, stem: bool = True, stopwords: frozenset[str] = STOPWORDS_EN | STOPWORDS_DE, min_len: int = 1
    ) -> None:
        self.stem = stem
        self.stopwords = stopwords
        self.min_len = min_len
        self._memo: dict[str, list[str]] = {}  # token -> its terms; words repeat, analysis is pure

    def _stem(self, word: str) -> str:
        if not self.stem or not word.isalpha():
            return word
        changed = True
        while changed:
            changed = False
            for suffix in _SUFFIXES:
                if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
                    word = word[: -len(suffix)] + ("y" if suffix == "ies" else "")
                    changed = True
                    break
        return word

    def _keep(self, word: str) -> bool:
        return len(word) >= self.min_len and word not in self.stopwords

    def _token_terms(self, token: str) -> list[str]:
        parts = [p for p in _SPLIT.split(token) if p]
        if len(parts) > 1:
            return [token] + [self._stem(p) for p in parts if self._keep(p)]
        return [self._stem(token)] if self._keep(token) else []

    def terms(self, text: str) -> list[str]:
        """Terms in text order; a compound yields itself, then its parts."""
        out: list[str] = []
        memo = self._memo
        for token in _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold()):
            found = memo.get(token)
            if found is None:
                if len(memo) >= _MEMO_TOKENS:
                    memo.clear()
                found = memo[token] = self._token_terms(token)
            out.extend(found)
        return out


@functools.lru_cache(maxsize=1 << 16)
def term_id(term: str) -> int:
    """Stable 31-bit id of a term (blake2b), the same in every process."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "little") & 0x7FFFFFFF


class Bm25Encoder:
    """Encodes documents and queries as BM25 sparse vectors with hashed term ids."""

    class Config(ComponentConfig):
        k1: float = Field(1.2, ge=0.0, le=10.0, description="term-frequency saturation")
        b: float = Field(0.75, ge=0.0, le=1.0, description="document-length normalisation")
        avg_doc_len: float | None = Field(
            None,
            gt=0,
            le=1e6,
            description="average document length in terms; None keeps a running mean of the documents encoded so far",
        )
        stem: bool = Field(True, description="strip common English/German plural endings")

    def __init__(
        self,
        *,
        k1: float = 1.2,
        b: float = 0.75,
        avg_doc_len: float | None = None,
        stem: bool = True,
        analyzer: Bm25Analyzer | None = None,
    ) -> None:
        self.k1 = k1
        self.b = b
        self.avg_doc_len = avg_doc_len
        self.analyzer = analyzer or Bm25Analyzer(stem=stem)
        self._docs = 0
        self._total_len = 0

    @classmethod
    def from_config(cls, config: Bm25Encoder.Config | None = None, **_: object) -> Bm25Encoder:
        c = config or cls.Config()
        return cls(k1=c.k1, b=c.b, avg_doc_len=c.avg_doc_len, stem=c.stem)

    def _avgdl(self, doc_len: int) -> float:
        if self.avg_doc_len is not None:
            return self.avg_doc_len
        self._docs += 1
        self._total_len += doc_len
        return self._total_len / self._docs

    @staticmethod
    def _vector(weights: dict[int, float]) -> SparseVector:
        items = sorted(weights.items())
        return SparseVector(tuple(i for i, _ in items), tuple(float(w) for _, w in items))

    def encode_document(self, text: str) -> SparseVector:
        """BM25 term-frequency weights of a document's terms."""
        terms = self.analyzer.terms(text)
        if not terms:
            return SparseVector((), ())
        avgdl = self._avgdl(len(terms))
        norm = self.k1 * (1.0 - self.b + self.b * len(terms) / avgdl)
        weights: dict[int, float] = {}
        for term, tf in Counter(terms).items():
            tid = term_id(term)
            # Two terms hashing to one id share the slot; the weights add, as their scores would.
            weights[tid] = weights.get(tid, 0.0) + tf * (self.k1 + 1.0) / (tf + norm)
        return self._vector(weights)

    def encode_query(self, text: str) -> SparseVector:
        """Weight 1 per distinct query term: the store's IDF turns the dot product into BM25."""
        return self._vector({term_id(t): 1.0 for t in self.analyzer.terms(text)})


__all__ = ["Bm25Analyzer", "Bm25Encoder", "term_id", "STOPWORDS_EN", "STOPWORDS_DE"]
