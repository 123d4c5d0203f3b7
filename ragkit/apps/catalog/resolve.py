"""Entity resolution: which products, makers and categories a question (or a tool argument) names.

A product can be named by its id, model, display name, or maker and model, with other spacing, hyphens, case or
unit suffixes ("VC-150 F" = "VC150F", "Dometic RCW25" = "RCW 25"). A misspelt name matches fuzzily above the
confidence threshold, but only when its numbers agree: a model's digits are its identity ("VC-300 F" is not
"VC-150 F"). A name several products share is ambiguous and yields every candidate; a model-like name that matches
nothing is reported with the closest products. Makers and categories are found the same way.
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Sequence

from ragkit.apps.catalog.catalog import Catalog, Product
from ragkit.apps.catalog.phrases import (
    Match,
    PhraseIndex,
    ProductMention,
    Token,
    UnknownMention,
    close_matches,
    key,
    longest_first,
    maker_parts,
    model_like,
    similarity,
    tokenize,
    windows,
)
from ragkit.apps.catalog.units import fold

_CATEGORY_STOP = frozenset("and or with without the a an of for und oder mit ohne der die das ein eine".split())
_MAKER_CUES = frozenset("by from von brand marke make maker hersteller anything".split())


def _compact(text: str) -> str:
    return re.sub(r"\s+", "", fold(text))


@dataclass
class Entities:
    """What a text names: products (resolved or ambiguous), unknown product names, makers, categories (set by the
    question reader, which first takes out the schema's own words)."""

    products: list[ProductMention] = field(default_factory=list)
    unknown: list[UnknownMention] = field(default_factory=list)
    makers: list[Match[frozenset[str]]] = field(default_factory=list)
    categories: list[Match[frozenset[str]]] = field(default_factory=list)
    unknown_makers: list[str] = field(default_factory=list)
    taken: set[int] = field(default_factory=set)  # token positions used by products and makers

    def product_ids(self) -> list[str]:
        return list(dict.fromkeys(pid for m in self.products for pid in m.ids))

    def maker_values(self) -> list[str]:
        return sorted({v for m in self.makers for v in m.payload})


class Resolver:
    """Indexes a catalog's product names, makers and categories; resolves them in questions and tool arguments."""

    def __init__(self, catalog: Catalog, threshold: float = 0.82) -> None:
        self.catalog = catalog
        self.threshold = threshold
        self.names: PhraseIndex[str] = PhraseIndex()
        self._compact_names: dict[str, list[str]] = defaultdict(list)  # compact name -> ids, for suggestions
        self._by_digits: dict[tuple[str, ...], set[str]] = defaultdict(set)
        self._keys: dict[str, set[tuple[str, ...]]] = defaultdict(set)
        self._raw: dict[str, set[str]] = defaultdict(set)  # id -> names as written, compacted
        self.makers: PhraseIndex[frozenset[str]] = PhraseIndex()
        self._maker_alias: dict[str, set[str]] = defaultdict(set)
        self.categories: PhraseIndex[frozenset[str]] = PhraseIndex(inflected=True)
        cfg = catalog.config
        self._id_pattern = re.compile(rf"(?<![\w-])(?:{cfg.id_pattern})(?![\w]|-\w)") if cfg.id_pattern else None
        for p in catalog:
            self._index_product(p)
        for maker in catalog.manufacturers():
            for alias in [*maker_parts(maker), *cfg.maker_synonyms.get(maker, [])]:
                self._maker_alias[" ".join(key(alias))].add(maker)
        for alias, makers in self._maker_alias.items():
            self.makers.add(tuple(alias.split()), frozenset(makers))
        self._index_categories()

    # Indexing --------------------------------------------------------------------------------------------------

    def _index_product(self, p: Product) -> None:
        seqs = [key(p.id)]
        for name in {p.model, p.name, *p.aliases} - {None, ""}:
            seq = key(name)  # type: ignore[arg-type]
            if any(t.isdigit() for t in seq) or len(seq) >= 2 or len("".join(seq)) >= 5:
                seqs.append(seq)
                makers = maker_parts(p.manufacturer) if p.manufacturer else []
                makers += self.catalog.config.maker_synonyms.get(p.manufacturer or "", [])
                seqs += [key(m) + seq for m in makers if key(m) != seq[: len(key(m))]]
            self._raw[p.id].add(_compact(name))  # type: ignore[arg-type]
        self._raw[p.id].add(_compact(p.id))
        for seq in dict.fromkeys(seqs):
            if seq:
                self.names.add(seq, p.id)
                self._keys[p.id].add(seq)
                self._compact_names["".join(seq)].append(p.id)
                self._by_digits[tuple(t.lstrip("0") or "0" for t in seq if t.isdigit())].add(p.id)

    def _index_categories(self) -> None:
        cats = self.catalog.categories()
        grams: dict[tuple[str, ...], set[str]] = defaultdict(set)
        count: dict[str, int] = defaultdict(int)
        for c in cats:
            for w in set(key(c)):
                count[w] += 1
        for c in cats:
            segments = [s for part in re.split(r"\s+-\s+", c) for s in (part, *part.split("/"))]
            for seg in [c, *segments]:
                seq = key(seg)
                for i in range(len(seq)):
                    for j in range(i + 1, len(seq) + 1):
                        gram = seq[i:j]
                        content = [w for w in gram if w not in _CATEGORY_STOP]
                        if not content or gram[0] in _CATEGORY_STOP or gram[-1] in _CATEGORY_STOP:
                            continue
                        if len(gram) == 1 and not (count[gram[0]] >= 2 or (j == len(seq) and len(gram[0]) >= 5)):
                            continue
                        grams[gram].add(c)
        for p in self.catalog:
            if p.category and p.category_de:
                grams[key(p.category_de)].add(p.category)
        for target, words in self.catalog.config.category_synonyms.items():
            target_key = key(target)
            hits = {c for c in cats if _contains(key(c), target_key)}
            for w in (w for lang_words in words.values() for w in lang_words):
                if hits:
                    grams[key(w)] |= hits
        for gram, hits in grams.items():
            self.categories.add(gram, frozenset(hits))

    # Finding ---------------------------------------------------------------------------------------------------

    def find(self, text: str, toks: Sequence[Token] | None = None, skip: set[int] | None = None) -> Entities:
        """Every product and maker ``text`` names; tokens in ``skip`` (quantities) are not names."""
        toks = list(toks if toks is not None else tokenize(text))
        out = self.find_names(text, toks, skip)
        self.find_rest(text, toks, out, skip)
        return out

    def find_names(self, text: str, toks: Sequence[Token], skip: set[int] | None = None) -> Entities:
        """The products named exactly (by any of their names) and the makers."""
        out = Entities()
        skip = set(skip or ())
        maker_matches = longest_first(self.makers.find(toks), skip)
        spans: dict[tuple[int, int], set[str]] = defaultdict(set)
        for m in longest_first(self.names.find(toks), skip):
            spans[(m.i, m.j)].add(m.payload)
        for (i, j), ids in sorted(spans.items()):
            chosen = self.narrow(sorted(ids), toks[i:j], maker_matches)
            out.products.append(ProductMention(_span_text(text, toks, i, j), chosen, 1.0, i, j))
            out.taken |= set(range(i, j))
        out.makers = [m for m in maker_matches if not set(range(m.i, m.j)) & out.taken]
        out.taken |= {k for m in out.makers for k in range(m.i, m.j)}
        return out

    def find_rest(self, text: str, toks: Sequence[Token], out: Entities, skip: set[int] | None = None) -> None:
        """Misspelt product names, unknown product names and unknown makers, outside ``skip`` (quantities)."""
        self._fuzzy(text, toks, out, set(skip or ()))
        out.unknown_makers = self._unknown_makers(toks, out)

    def narrow(self, ids: list[str], span: Sequence[Token], makers: Sequence[Match[frozenset[str]]]) -> list[str]:
        """Of the products sharing a name, those spelt exactly as written, then those by a maker the text names."""
        if len(ids) > 1:
            written = _compact(" ".join(dict.fromkeys(t.word for t in span))).rstrip(".'")
            ids = [pid for pid in ids if any(written.endswith(r) for r in self._raw[pid])] or ids
        if len(ids) > 1 and makers:
            named = {v for mk in makers for v in mk.payload}
            ids = [pid for pid in ids if self.catalog.products[pid].manufacturer in named] or ids
        return ids

    def _fuzzy(self, text: str, toks: Sequence[Token], out: Entities, skip: set[int]) -> None:
        makers = {v for m in out.makers for v in m.payload}
        for i, j in windows(toks, out.taken | skip):
            seq = tuple(t.norm for t in toks[i:j])
            digits = tuple(t.lstrip("0") or "0" for t in seq if t.isdigit())
            pool = self._by_digits.get(digits, set())
            if makers:
                pool = {pid for pid in pool if self.catalog.products[pid].manufacturer in makers} or pool
            # A misspelt maker or name word may stand before the code ("Labofrst LR 288"): try the span with it too.
            starts = [i] + [k for k in (i - 1, i - 2) if k >= 0 and _name_word(toks, k, out.taken | skip, i)]
            scored = sorted(
                (
                    (max(similarity("".join(t.norm for t in toks[a:j]), "".join(k)) for k in self._keys[pid]), a, pid)
                    for pid in pool
                    for a in starts
                ),
                reverse=True,
            )
            if scored and scored[0][0] >= self.threshold:
                top, a = scored[0][0], scored[0][1]
                best = list(dict.fromkeys(pid for sc, start, pid in scored if sc >= top - 1e-9 and start == a))
                out.products.append(ProductMention(_span_text(text, toks, a, j), best, top, a, j))
                out.taken |= set(range(a, j))
                continue
            words = _span_text(text, toks, i, j)
            maker = next((m for m in out.makers if m.j == i), None)
            suggestions = self.suggest(words, maker=maker.payload if maker else None)
            name = _maker_name(toks, maker)
            if (
                name is None
                and i > 0
                and (i - 1) not in out.taken
                and re.fullmatch(r"[A-Z][^\W\d_]+", toks[i - 1].word)
            ):
                name = toks[i - 1].word  # an unknown maker's name, kept for the answer ("Siemens KG36NXI35")
            out.unknown.append(UnknownMention(words, suggestions, name, i, j))
        if self._id_pattern is not None:
            for m in self._id_pattern.finditer(text):
                if self.catalog.get(m.group(0)) is None and not any(m.group(0) in u.text for u in out.unknown):
                    if not any(p.start <= _token_at(toks, m.start()) < p.end for p in out.products):
                        out.unknown.append(UnknownMention(m.group(0), self.suggest(m.group(0))))

    def _unknown_makers(self, toks: Sequence[Token], out: Entities) -> list[str]:
        """Capitalised names after "by"/"from"/"von"/"brand", or right before an unknown model, that no maker has."""
        found = []
        before = {u.start - 1 for u in out.unknown if u.start > 0}
        for k, t in enumerate(toks):
            if k in out.taken or not t.word[:1].isupper() or not re.fullmatch(r"[^\W\d_]+(?:'s)?[?.!,]*", t.word):
                continue
            if k in before or (k > 0 and toks[k - 1].norm in _MAKER_CUES):
                found.append(re.sub(r"(?:'s|[?.!,])+$", "", t.word))
        return found

    def fuzzy_maker(self, word: str, cutoff: float = 0.85) -> frozenset[str] | None:
        """The makers a misspelt one-word name stands for ("Vestfrsot", "Dometik"), if one is close enough."""
        if len(word) < 6:
            return None
        best, score = None, cutoff
        for alias, makers in self._maker_alias.items():
            if " " not in alias and len(alias) >= 6:
                ratio = difflib.SequenceMatcher(None, word, alias).ratio()
                if ratio >= score:
                    best, score = frozenset(makers), ratio
        return best

    # Single references (tool arguments) ------------------------------------------------------------------------

    def resolve(self, ref: str) -> ProductMention | UnknownMention:
        """The product(s) one reference names: an id, model, name or maker + model, exact or fuzzy."""
        p = self.catalog.get(ref)
        if p is not None:
            return ProductMention(ref, [p.id], 1.0)
        ents = self.find(ref)
        ids = ents.product_ids()
        if ids:
            return ProductMention(ref, ids, min(m.confidence for m in ents.products))
        return UnknownMention(ref, self.suggest(ref))

    def suggest(self, text: str, n: int = 3, maker: frozenset[str] | None = None) -> list[str]:
        """Ids of the products whose names are closest to ``text``."""
        names = self._compact_names
        if maker:
            names = {k: [i for i in v if self.catalog.products[i].manufacturer in maker] for k, v in names.items()}
            names = {k: v for k, v in names.items() if v} or self._compact_names
        return close_matches("".join(key(text)), names, n=n)  # type: ignore[arg-type]


def _contains(seq: tuple[str, ...], part: tuple[str, ...]) -> bool:
    return any(seq[i : i + len(part)] == part for i in range(len(seq) - len(part) + 1)) if part else False


def _span_text(text: str, toks: Sequence[Token], i: int, j: int) -> str:
    return text[toks[i].word_start : toks[j - 1].word_end].strip(" ?!.,;:")


def _name_word(toks: Sequence[Token], k: int, taken: set[int], first: int) -> bool:
    """Whether token ``k`` starts a capitalised word of letters that runs up to the code at ``first``."""
    words = {toks[x].word_start for x in range(k, first)}
    return (
        k not in taken
        and (k == 0 or toks[k - 1].word_start != toks[k].word_start)
        and all(toks[x].word[:1].isupper() and toks[x].norm.isalpha() for x in range(k, first))
        and len(words) == first - k
    )


def _token_at(toks: Sequence[Token], pos: int) -> int:
    return next((k for k, t in enumerate(toks) if t.start <= pos < t.end), -1)


def _maker_name(toks: Sequence[Token], maker: Match[frozenset[str]] | None) -> str | None:
    if maker is None:
        return None
    return " ".join(dict.fromkeys(t.word for t in toks[maker.i : maker.j]))


__all__ = ["Resolver", "Entities", "model_like"]
