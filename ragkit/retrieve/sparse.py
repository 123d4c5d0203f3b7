"""BM25 sparse vectors: a per-language analyzer (Snowball stems, stopwords, product ids kept whole), hashed term ids
that need no vocabulary, and corpus statistics that persist with the index.

Documents carry the BM25 term-frequency part, ``tf·(k1+1) / (tf + k1·(1 − b + b·dl/avgdl))``; queries carry
1 per distinct term. A store whose sparse vector has Qdrant's IDF modifier multiplies each query term by its
IDF, so the dot product it ranks by is the BM25 score.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

from ragkit.component import ComponentConfig, Field
from ragkit.errors import ConfigError
from ragkit.language import detect_language
from ragkit.retrieve.stemming import stemmer_for, stopwords_for
from ragkit.types import SparseVector

log = logging.getLogger("ragkit.retrieve.sparse")

# A compound is word characters joined by - _ . / (LABO-288, MED-COOL-300, 3.5, EN/DE); it is kept whole
# and its parts are emitted too, so "LABO 288" still matches "LABO-288".
_TOKEN = re.compile(r"\w+(?:[-_./]\w+)*", re.UNICODE)
_SPLIT = re.compile(r"[-_./]")
_PARAGRAPH = re.compile(r"\n\s*\n")
STATS_FILE = "bm25_stats.json"
_MEMO_TOKENS = 200_000  # distinct tokens an analyzer remembers per language before it starts over

# The first analyzer's lists and suffixes (stemmer "light"), kept so old indexes and benchmarks can be reproduced.
LIGHT_STOPWORDS = frozenset(
    "a an and are as at be been but by can do does for from had has have how i if in into is it its of on or "
    "so such than that the their then there these they this to was were what when where which who why will "
    "with would you your aber als am an auch auf aus bei bin bis bist da dann das dass dem den der des die dies "
    "diese dieser doch du durch ein eine einem einen einer eines er es für hat hatte ich ihr im in ist ja kann mit "
    "nach nicht noch nur ob oder sich sie sind so über um und uns unter vom von vor war was wenn wer wie wir wird "
    "zu zum zur".split()
)
_SUFFIXES = ("ies", "es", "en", "s", "e")


def light_stem(word: str) -> str:
    """Strip English/German plural endings until none fits ("freezers" -> "freezer", "Geräte" -> "gerät")."""
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
                word = word[: -len(suffix)] + ("y" if suffix == "ies" else "")
                changed = True
                break
    return word


class Bm25Analyzer:
    """Text → terms: NFKC, casefold, stopwords and Snowball stems of the text's language, compounds whole plus parts.

    ``language="auto"`` detects English or German per paragraph of a document and per query; a query with no
    evidence either way is analysed in each of ``query_languages``. A language without a Snowball stemmer
    (text mostly outside the Latin script, or a code Snowball lacks) is analysed without stemming, said once.
    """

    def __init__(
        self,
        *,
        language: str = "auto",
        stemmer: Literal["snowball", "light", "none"] = "snowball",
        stopwords: bool = True,
        extra_stopwords: Sequence[str] = (),
        default_language: str = "en",
        min_len: int = 1,
    ) -> None:
        self.language = language
        self.stemmer = stemmer
        self.stopwords = stopwords
        self.extra_stopwords = frozenset(w.casefold() for w in extra_stopwords)
        self.default_language = default_language
        self.min_len = min_len
        self.query_languages: tuple[str, ...] = (default_language,)
        self._memo: dict[str, dict[str, list[str]]] = {}  # language -> token -> its terms
        self._warned: set[str] = set()

    @property
    def stem(self) -> bool:
        return self.stemmer != "none"

    def _word_rules(self, language: str) -> tuple[Callable[[str], str] | None, frozenset[str]]:
        if self.stemmer == "light":
            return light_stem, (LIGHT_STOPWORDS if self.stopwords else frozenset()) | self.extra_stopwords
        stem = stemmer_for(language) if self.stemmer == "snowball" else None
        if stem is None and self.stemmer == "snowball" and language not in self._warned:
            self._warned.add(language)
            log.warning(
                "BM25: no Snowball stemmer for language %r; its text is indexed and searched without stemming "
                "(said once per language)",
                language,
            )
        stop = stopwords_for(language) if self.stopwords else frozenset()
        return stem, stop | self.extra_stopwords

    def _analyse(self, text: str, language: str, out: list[str]) -> None:
        memo = self._memo.get(language)
        if memo is None:
            memo = self._memo[language] = {}
        rules: tuple[Callable[[str], str] | None, frozenset[str]] | None = None
        for token in _TOKEN.findall(text):
            found = memo.get(token)
            if found is None:
                if rules is None:
                    rules = self._word_rules(language)
                if len(memo) >= _MEMO_TOKENS:
                    memo.clear()
                found = memo[token] = self._token_terms(token, *rules)
            out.extend(found)

    def _token_terms(self, token: str, stem: Callable[[str], str] | None, stop: frozenset[str]) -> list[str]:
        def word(w: str) -> str:
            return stem(w) if stem is not None and w.isalpha() else w

        def keep(w: str) -> bool:
            return len(w) >= self.min_len and w not in stop

        parts = [p for p in _SPLIT.split(token) if p]
        if len(parts) > 1:  # an id or code: whole, then its parts
            return [token] + [word(p) for p in parts if keep(p)]
        return [word(token)] if keep(token) else []

    def document_languages(self, text: str) -> list[tuple[str, str]]:
        """(paragraph, language) pairs; a paragraph without evidence takes the whole text's language."""
        if self.stemmer == "light" or self.language != "auto":
            return [(text, self.default_language if self.language == "auto" else self.language)]
        whole = detect_language(text) or self.default_language
        paragraphs = _PARAGRAPH.split(text)
        if len(paragraphs) == 1:
            return [(text, whole)]
        return [(p, detect_language(p) or whole) for p in paragraphs]

    def document_terms(self, text: str) -> tuple[list[str], str]:
        """A document's terms in text order (a compound yields itself, then its parts), and its main language."""
        parts = self.document_languages(unicodedata.normalize("NFKC", text).casefold())
        out: list[str] = []
        for paragraph, lang in parts:
            self._analyse(paragraph, lang, out)
        return out, max(parts, key=lambda p: len(p[0]))[1]

    def terms(self, text: str, language: str | None = None) -> list[str]:
        """A document's terms in text order, in ``language`` when given."""
        if language is None:
            return self.document_terms(text)[0]
        out: list[str] = []
        self._analyse(unicodedata.normalize("NFKC", text).casefold(), language, out)
        return out

    def query_terms(self, text: str) -> list[str]:
        """A query's distinct terms: in its detected language, else in each of ``query_languages``."""
        if self.stemmer == "light" or self.language != "auto":
            return list(dict.fromkeys(self.terms(text)))
        norm = unicodedata.normalize("NFKC", text).casefold()
        found = detect_language(text)
        out: list[str] = []
        for lang in (found,) if found else self.query_languages:
            self._analyse(norm, lang, out)
        return list(dict.fromkeys(out))


@functools.lru_cache(maxsize=1 << 16)
def term_id(term: str) -> int:
    """Stable 31-bit id of a term (blake2b), the same in every process."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "little") & 0x7FFFFFFF


@dataclass
class CorpusStats:
    """What BM25 needs to know about the corpus so far: documents (chunks), their total length, their languages."""

    docs: int = 0
    total_len: int = 0
    languages: dict[str, int] = field(default_factory=dict)
    analyzer: dict[str, Any] = field(default_factory=dict)  # the settings the index was encoded with

    @property
    def avg_doc_len(self) -> float | None:
        return self.total_len / self.docs if self.docs else None

    @classmethod
    def load(cls, path: Path) -> CorpusStats:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                int(data["docs"]), int(data["total_len"]), dict(data.get("languages", {})), data.get("analyzer", {})
            )
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"BM25 corpus statistics {path} are unreadable ({e}); delete it and re-index") from e

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        data = {"docs": self.docs, "total_len": self.total_len, "languages": self.languages, "analyzer": self.analyzer}
        tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)


class Bm25Encoder:
    """Encodes documents and queries as BM25 sparse vectors with hashed term ids."""

    class Config(ComponentConfig):
        k1: float = Field(1.2, ge=0.0, le=10.0, description="term-frequency saturation")
        b: float = Field(0.75, ge=0.0, le=1.0, description="document-length normalisation")
        language: str = Field(
            "auto",
            pattern=r"^(auto|[a-z]{2,3})$",
            description="'auto' detects English or German per paragraph and per query; or one ISO 639-1 code "
            "for every text (Snowball stems it when it has an algorithm for it)",
        )
        stemmer: Literal["snowball", "light", "none"] = Field(
            "snowball",
            description="Snowball stems of the text's language; 'light' is the first analyzer (English/German "
            "plural endings, one mixed stopword list), kept to reproduce old indexes; 'none' keeps words whole",
        )
        stopwords: bool = Field(True, description="drop the language's function words (English and German lists)")
        extra_stopwords: list[str] = Field(
            default_factory=list, max_length=10_000, description="more words to drop, in any language"
        )
        avg_doc_len: float | None = Field(
            None,
            gt=0,
            le=1e6,
            description="fixed average document length in terms; None uses the corpus statistics kept with the "
            "index (a running mean over every batch encoded)",
        )

    def __init__(
        self,
        *,
        k1: float = 1.2,
        b: float = 0.75,
        avg_doc_len: float | None = None,
        language: str = "auto",
        stemmer: Literal["snowball", "light", "none"] = "snowball",
        stopwords: bool = True,
        extra_stopwords: Sequence[str] = (),
        stem: bool | None = None,
        analyzer: Bm25Analyzer | None = None,
        path: str | Path | None = None,
    ) -> None:
        self.k1 = k1
        self.b = b
        self.avg_doc_len = avg_doc_len
        if stem is False:
            stemmer = "none"
        self.analyzer = analyzer or Bm25Analyzer(
            language=language, stemmer=stemmer, stopwords=stopwords, extra_stopwords=extra_stopwords
        )
        self.path = Path(path) if path is not None else None
        self.stats = CorpusStats.load(self.path) if self.path is not None else CorpusStats()
        settings = self._settings()
        if self.stats.analyzer and self.stats.analyzer != settings:
            log.warning(
                "BM25 settings %s differ from those the index was built with (%s); re-index for consistent scores",
                settings,
                self.stats.analyzer,
            )
        self.stats.analyzer = settings
        self._update_query_languages()

    @classmethod
    def from_config(
        cls, config: Bm25Encoder.Config | None = None, *, index_dir: str | Path | None = None, **_: Any
    ) -> Bm25Encoder:
        """With ``index_dir`` the corpus statistics live in ``index_dir/bm25_stats.json``."""
        c = config or cls.Config()
        stats = Path(index_dir) / STATS_FILE if index_dir is not None else None
        return cls(
            k1=c.k1,
            b=c.b,
            avg_doc_len=c.avg_doc_len,
            language=c.language,
            stemmer=c.stemmer,
            stopwords=c.stopwords,
            extra_stopwords=c.extra_stopwords,
            path=stats,
        )

    def _settings(self) -> dict[str, Any]:
        a = self.analyzer
        return {"language": a.language, "stemmer": a.stemmer, "stopwords": a.stopwords, "k1": self.k1, "b": self.b}

    def _update_query_languages(self) -> None:
        # A query with no language evidence is analysed in every language that holds at least a tenth of the corpus.
        langs = self.stats.languages
        total = sum(langs.values())
        major = tuple(sorted((lang for lang, n in langs.items() if n >= 0.1 * total), key=lambda k: -langs[k]))
        self.analyzer.query_languages = major or (self.analyzer.default_language,)

    @staticmethod
    def _vector(weights: dict[int, float]) -> SparseVector:
        items = sorted(weights.items())
        return SparseVector(tuple(i for i, _ in items), tuple(float(w) for _, w in items))

    def _weights(self, terms: list[str], avgdl: float) -> SparseVector:
        if not terms:
            return SparseVector((), ())
        norm = self.k1 * (1.0 - self.b + self.b * len(terms) / avgdl)
        weights: dict[int, float] = {}
        for term, tf in Counter(terms).items():
            tid = term_id(term)
            # Two terms hashing to one id share the slot; the weights add, as their scores would.
            weights[tid] = weights.get(tid, 0.0) + tf * (self.k1 + 1.0) / (tf + norm)
        return self._vector(weights)

    def encode_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        """BM25 term-frequency weights of each text; the batch joins the corpus statistics before it is weighted."""
        analysed = []
        for text in texts:
            terms, main = self.analyzer.document_terms(text)
            analysed.append(terms)
            if terms:
                self.stats.docs += 1
                self.stats.total_len += len(terms)
                self.stats.languages[main] = self.stats.languages.get(main, 0) + 1
        avgdl = self.avg_doc_len or self.stats.avg_doc_len or 1.0
        if self.path is not None and texts:
            self.stats.save(self.path)
        self._update_query_languages()
        return [self._weights(terms, avgdl) for terms in analysed]

    def encode_document(self, text: str) -> SparseVector:
        """One document's BM25 weights (``encode_documents`` of one)."""
        return self.encode_documents([text])[0]

    def encode_query(self, text: str) -> SparseVector:
        """Weight 1 per distinct query term: the store's IDF turns the dot product into BM25. Empty when the query
        has no searchable terms (blank, or only stopwords)."""
        return self._vector({term_id(t): 1.0 for t in self.analyzer.query_terms(text)})


__all__ = ["Bm25Analyzer", "Bm25Encoder", "CorpusStats", "term_id", "light_stem", "LIGHT_STOPWORDS", "STATS_FILE"]
