"""Extractive compression: order, ids, duplicates, budget, numbers and ids, reordering."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragkit import registry
from ragkit.answer.compress import ExtractiveCompressor, ExtractiveCompressorConfig
from ragkit.answer.compression import CompressionResult, NoCompressor
from ragkit.answer.sentences import jaccard, lost_in_the_middle, shingles, split_sentences, terms
from ragkit.tokens import TiktokenCounter
from ragkit.types import Chunk, Hit

COUNT = TiktokenCounter("cl100k_base").count


def hit(text: str, id: str, score: float = 1.0, start: int = 0) -> Hit:
    return Hit(Chunk(id, "doc-" + id, text, start, start + len(text), {"title": id}), score)


MANUAL = (
    "The LABO-100 is a compact fridge. It holds 100 litres and runs quietly. "
    "The LABO-288 is the larger freezer model. Its capacity is 288 litres at minus 20 degrees. "
    "Both models ship in white. Delivery usually takes two weeks."
)
FILLER = "Our company was founded long ago. We value quality and service. Customers like our friendly staff. "


@pytest.fixture
def compressor() -> ExtractiveCompressor:
    return ExtractiveCompressor(count=COUNT)


def test_registry_names_resolve():
    assert registry.resolve("compressor", "extractive") is ExtractiveCompressor
    assert registry.resolve("compressor", "none") is NoCompressor
    c = ExtractiveCompressor.from_config(ExtractiveCompressor.Config(reorder="lost_in_the_middle"), count=COUNT)
    assert c.config.reorder == "lost_in_the_middle"
    with pytest.raises(ValueError):
        ExtractiveCompressorConfig(dedup_threshold=2.0)
    with pytest.raises(ValueError):
        ExtractiveCompressorConfig(surprise=1)


def test_split_sentences_keeps_offsets_and_abbreviations():
    text = "Dr. Smith met J. Doe in the U.S. at 3.5 p.m. today. Then they left!  Next one? 東京は晴れ。大阪は雨。"
    spans = split_sentences(text)
    pieces = [text[s:e] for s, e in spans]
    assert pieces == [
        "Dr. Smith met J. Doe in the U.S. at 3.5 p.m. today.",
        "Then they left!",
        "Next one?",
        "東京は晴れ。",
        "大阪は雨。",
    ]


def test_terms_keep_ids_and_numbers_whole():
    assert "labo-288" in terms("Is the LABO-288 quiet?")
    assert {"1,000", "3.5", "288"} <= set(terms("It costs 1,000 EUR, weighs 3.5 kg and holds 288 litres."))
    assert "country" in terms("countries")
    assert "東京" in terms("東京都")


def test_compression_keeps_order_ids_and_the_sentence_with_the_queried_id(compressor):
    hits = [hit(FILLER + MANUAL + FILLER, "manual", start=1000), hit(FILLER * 3, "about")]
    result = compressor.compress("What is the capacity of the LABO-288?", hits, 40)
    assert isinstance(result, CompressionResult)
    assert result.tokens_after <= 40 < result.tokens_before
    assert sum(COUNT(h.chunk.text) for h in result.hits) == result.tokens_after
    kept = {h.chunk.id: h for h in result.hits}
    manual = kept["manual"]
    assert "Its capacity is 288 litres" in manual.chunk.text
    assert manual.chunk.doc_id == "doc-manual" and manual.chunk.metadata["title"] == "manual"
    # Kept spans point back into the original text, in source order.
    spans = manual.chunk.metadata["kept_spans"]
    original = hits[0].chunk.text
    assert list(spans) == sorted(spans)
    assert all(original[s:e] in manual.chunk.text for s, e in spans)
    assert manual.chunk.start == 1000 + spans[0][0]
    positions = [manual.chunk.text.index(original[s:e]) for s, e in spans]
    assert positions == sorted(positions)
    assert any(d.reason.startswith("over budget") for d in result.dropped)
    assert result.ratio > 1


def test_number_in_the_query_picks_the_right_sentence(compressor):
    text = "Model A holds 100 litres. Model B holds 288 litres. Model C holds 350 litres."
    result = compressor.compress("Which model holds 288 litres?", [hit(text, "t")], 8)
    assert result.hits[0].chunk.text == "Model B holds 288 litres."


def test_near_duplicate_chunks_and_sentences_are_removed(compressor):
    a = hit(MANUAL, "a")
    b = hit(MANUAL.replace("two weeks", "2 weeks"), "b")  # near-duplicate chunk
    c = hit("A different note. The LABO-288 is the larger freezer model. Returns are free.", "c")
    result = compressor.compress("LABO-288 capacity", [a, b, c], 10_000)
    ids = [h.chunk.id for h in result.hits]
    assert ids == ["a", "c"]
    assert "near-duplicate chunk of a" in result.chunk_reasons["b"]
    assert (
        "The LABO-288 is the larger freezer model." not in next(h for h in result.hits if h.chunk.id == "c").chunk.text
    )
    assert result.duplicates == 2


def test_under_budget_nothing_but_duplicates_is_dropped(compressor):
    hits = [hit(MANUAL, "a"), hit(FILLER, "b")]
    result = compressor.compress("anything", hits, 10_000)
    assert [h.chunk.text for h in result.hits] == [MANUAL, FILLER]
    assert result.tokens_after == result.tokens_before and result.dropped == ()


def test_zero_budget_drops_everything(compressor):
    result = compressor.compress("LABO-288", [hit(MANUAL, "a")], 0)
    assert result.hits == () and result.tokens_after == 0
    assert result.chunk_reasons == {"a": "no sentence fit the budget"}


def test_embedding_cosine_can_rescue_a_sentence_without_word_overlap():
    lead, returns, rating = (
        "Welcome to the product page.",
        "Returns are accepted within thirty days.",
        "The appliance is rated A++ for efficiency.",
    )
    text = " ".join([lead, returns, rating])

    def embed(texts):
        # The query and the efficiency sentence point the same way; everything else is orthogonal.
        return [[1.0, 0.0] if ("energy" in t or "efficiency" in t) else [0.0, 1.0] for t in texts]

    query = "How much energy does it use?"
    budget = COUNT(lead) + COUNT(rating) + 1
    lexical = ExtractiveCompressor(count=COUNT).compress(query, [hit(text, "t")], budget)
    config = ExtractiveCompressorConfig(embedding_weight=0.8)
    semantic = ExtractiveCompressor(config, count=COUNT, embed=embed).compress(query, [hit(text, "t")], budget)
    assert rating in semantic.hits[0].chunk.text
    assert rating not in lexical.hits[0].chunk.text


def test_lost_in_the_middle_puts_the_best_at_both_ends():
    assert lost_in_the_middle([1, 2, 3, 4, 5]) == [1, 3, 5, 4, 2]
    assert lost_in_the_middle([3, 1, 2], key=lambda x: x) == [3, 1, 2]
    hits = [hit(f"Source number {i} talks about LABO-288.", f"h{i}") for i in range(5)]
    c = ExtractiveCompressor(
        ExtractiveCompressorConfig(reorder="lost_in_the_middle", dedup_threshold=0.99), count=COUNT
    )
    result = c.compress("LABO-288", hits, 10_000)
    assert [h.chunk.id for h in result.hits] == ["h0", "h2", "h4", "h3", "h1"]


def test_no_compressor_passes_through():
    hits = [hit(MANUAL, "a"), hit(MANUAL, "b")]
    result = NoCompressor(count=COUNT).compress("q", hits, 1)
    assert result.hits == tuple(hits) and result.ratio == 1.0


def test_shingled_jaccard():
    a = shingles("the quick brown fox jumps".split(), 3)
    assert jaccard(a, a) == 1.0
    assert jaccard(a, shingles("the quick brown cat sleeps".split(), 3)) == pytest.approx(1 / 5)
    assert jaccard(frozenset(), a) == 0.0


words = st.sampled_from(
    "LABO-288 freezer holds 288 litres quiet white delivery 漢字 😀 the a of is. Model, price 1,200 EUR!".split()
)
sentence = st.lists(words, min_size=1, max_size=15).map(lambda ws: " ".join(ws) + ".")
chunk_text = st.lists(sentence, min_size=1, max_size=8).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(chunk_text, min_size=1, max_size=6), budget=st.integers(0, 300), query=chunk_text)
def test_budget_is_respected_and_ids_survive(texts, budget, query):
    hits = [hit(t, f"c{i}") for i, t in enumerate(texts)]
    result = ExtractiveCompressor(count=COUNT).compress(query, hits, budget)
    assert sum(COUNT(h.chunk.text) for h in result.hits) == result.tokens_after <= max(budget, 0)
    ids = [h.chunk.id for h in result.hits]
    assert ids == [h.chunk.id for h in hits if h.chunk.id in ids]  # original order
    originals = {h.chunk.id: h.chunk for h in hits}
    for h in result.hits:
        assert h.chunk.doc_id == originals[h.chunk.id].doc_id
        for s, e in h.chunk.metadata.get("kept_spans", ()):
            assert originals[h.chunk.id].text[s:e] in h.chunk.text
