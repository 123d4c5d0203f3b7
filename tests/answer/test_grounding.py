"""The grounding check: citations that point nowhere, numbers and ids no source holds, strict mode; and its wiring
into the pipeline (real chunking and Qdrant engine, fakes for the models)."""

from __future__ import annotations

import pytest

from ragkit.answer.grounding import (
    GroundingConfig,
    answer_sentences,
    check_grounding,
    checked_reply,
    ids,
    quantities,
    strict_answer,
)
from ragkit.config import parse_pipeline
from ragkit.errors import ConfigError
from ragkit.language import ABSTENTION_DE, ABSTENTION_EN
from ragkit.pipeline import RAG
from ragkit.testing import FakeEmbedder, FakeGenerator
from ragkit.types import Chunk, Document, Hit, Reply

FREEZERS = [
    "The Arctica DeepCold 420 (ARC-ULT-420) is an ultra-low freezer; it reaches −86 °C and holds 420 litres.",
    "POLAR-ULT-90 reaches -86°C with 90 L. List price: 10,490.00 USD.",
    "The KN-LF-120 laboratory freezer runs from -24 °C to -14 °C.",
]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("reaches -86 °C", [("-86 °C", {-86.0}, "°C")]),
        ("reaches −86°C", [("−86°C", {-86.0}, "°C")]),
        ("holds 288 litres", [("288 litres", {288.0}, "L")]),
        ("Inhalt 288 Liter", [("288 Liter", {288.0}, "L")]),
        ("costs USD 4,590.00", [("USD 4,590.00", {4590.0}, "USD")]),
        ("costs 10,490 USD", [("10,490 USD", {10490.0, 10.49}, "USD")]),
        ("kostet 1.234,50 €", [("1.234,50 €", {1234.5}, "EUR")]),
        ("2–8 °C", [("2", {2.0}, None), ("8 °C", {8.0}, "°C")]),
        ("in the 10th century, about 5%", [("10th", {10.0}, None), ("5%", {5.0}, "%")]),
        ("ARC-ULT-420 and COVID-19 hold no bare numbers", []),
        ("5 million lions", [("5", {5.0}, None)]),
    ],
)
def test_quantities_keep_value_and_unit(text, expected):
    assert [(q.text, set(q.values), q.unit) for q in quantities(text)] == expected


def test_ids_are_tokens_with_letters_and_digits():
    assert ids("ARC-ULT-420, POLAR-ULT-90 and D1NZ; not 10th or 1962") == ["ARC-ULT-420", "POLAR-ULT-90", "D1NZ"]


def test_sentences_end_after_a_unit_and_take_trailing_citations():
    assert answer_sentences("Both reach -86 °C. They hold 420 L. [1]") == ["Both reach -86 °C.", "They hold 420 L. [1]"]


def test_supported_claims_in_cited_sources():
    g = check_grounding("ARC-ULT-420 [1] and POLAR-ULT-90 [2] reach -86 °C.", FREEZERS)
    assert g.ok and g.cited == (1, 2) and g.unsupported == () and g.miscited == ()
    claims = {c.text: c.found_in for c in g.sentences[0].claims}
    assert claims == {"-86 °C": (1, 2), "ARC-ULT-420": (1,), "POLAR-ULT-90": (2,)}


def test_numbers_match_across_spellings_and_units_must_agree():
    assert check_grounding("It holds 420 liters [1].", FREEZERS).ok
    assert check_grounding("It costs 10490 USD [2].", FREEZERS).ok
    wrong_unit = check_grounding("It holds 420 kWh [1].", FREEZERS)
    assert not wrong_unit.ok and wrong_unit.unsupported == ("'420 kWh' appears in no source",)


def test_unsupported_number_and_bad_citation_are_reported():
    g = check_grounding("POLAR-ULT-90 reaches -86 °C [2]. It stores DNA for up to 2 years [2]. See [7].", FREEZERS)
    assert not g.ok
    assert g.unsupported == ("[7] points to no source (there are 3)", "'2' appears in no source")
    assert [s.supported for s in g.sentences] == [True, False, False]
    data = g.to_dict()
    assert data["ok"] is False and data["unsupported"] == list(g.unsupported) and data["cited"] == [2]


def test_claim_outside_the_cited_source_is_supported_but_miscited():
    g = check_grounding("The KN-LF-120 goes down to -24 °C [1].", FREEZERS)
    assert g.ok
    assert g.miscited == (
        "'KN-LF-120' is in source 3, not in the cited one",
        "'-24 °C' is in source 3, not in the cited one",
    )


def test_uncited_claims_are_checked_against_every_source():
    assert check_grounding("POLAR-ULT-90 holds 90 L.", FREEZERS).ok
    assert not check_grounding("POLAR-ULT-90 holds 95 L.", FREEZERS).ok


def test_strict_keeps_supported_sentences_or_abstains_in_the_question_language():
    g = check_grounding("ARC-ULT-420 reaches -86 °C [1]. It stores DNA for up to 2 years [1].", FREEZERS)
    text, strict = strict_answer(g, "Which freezers reach -86 °C?")
    assert text == "ARC-ULT-420 reaches -86 °C [1]."
    assert strict.mode == "strict" and strict.removed == ("It stores DNA for up to 2 years [1].",)
    only_wrong = check_grounding("Er kostet 999 EUR [1].", FREEZERS)
    assert strict_answer(only_wrong, "Was kostet der Gefrierschrank?")[0] == ABSTENTION_DE
    assert strict_answer(check_grounding("[1]", FREEZERS), "Who makes it?")[0] == ABSTENTION_EN


def test_config_accepts_a_bare_mode_and_names_the_field_on_a_typo():
    assert parse_pipeline({"grounding": "strict"}).grounding.mode == "strict"
    assert parse_pipeline({"grounding": {"mode": "off"}}).grounding.mode == "off"
    assert parse_pipeline({}).grounding.mode == "check"
    with pytest.raises(ConfigError, match="grounding.mode"):
        parse_pipeline({"grounding": "strictly"})


def _hit(text: str, n: int) -> Hit:
    return Hit(Chunk(f"c{n}", f"d{n}", text, 0, len(text)), 1.0, {"dense": 0.8})


def test_checked_reply_leaves_tool_calls_and_off_mode_alone():
    from ragkit.testing.fakes import tool_call

    hits = [_hit(t, i) for i, t in enumerate(FREEZERS)]
    calls = Reply("", tool_calls=(tool_call("search", "{}"),), sources=tuple(hits))
    assert checked_reply(calls, "q?") is calls
    off = checked_reply(Reply("It holds 999 L [1].", sources=tuple(hits)), "q?", GroundingConfig(mode="off"))
    assert "grounding" not in off.metadata and off.text == "It holds 999 L [1]."


DOCS = [
    Document("ult", FREEZERS[0], {"title": "ARC-ULT-420"}),
    Document("polar", FREEZERS[1], {"title": "POLAR-ULT-90"}),
]


def make(tmp_path, answer: str, **extra):
    config = parse_pipeline({"index_dir": str(tmp_path / "idx"), **extra})
    gen = FakeGenerator((answer,), context_window=2048)
    return RAG(config, generators={"local": gen}, embedder=FakeEmbedder(32))


async def test_pipeline_reports_unsupported_claims(tmp_path):
    rag = make(tmp_path, "ARC-ULT-420 reaches -86 °C [1]. It stores DNA for up to 2 years [1].")
    await rag.aindex(DOCS)
    reply = await rag.aask("Which freezers reach -86 °C?")
    g = reply.metadata["grounding"]
    assert reply.text.endswith("2 years [1].")  # check mode reports, it does not edit
    assert g.unsupported == ("'2' appears in no source",) and g.n_sources == len(reply.sources)
    await rag.aclose()


async def test_pipeline_strict_removes_the_unsupported_sentence_in_ask_and_stream(tmp_path):
    answer = "ARC-ULT-420 reaches -86 °C [1]. It stores DNA for up to 2 years [1]."
    rag = make(tmp_path, answer, grounding="strict")
    await rag.aindex(DOCS)
    reply = await rag.aask("Which freezers reach -86 °C?")
    assert reply.text == "ARC-ULT-420 reaches -86 °C [1]."
    assert reply.metadata["grounding"].removed == ("It stores DNA for up to 2 years [1].",)
    await rag.aclose()
    rag = make(tmp_path, answer, grounding="strict")
    deltas = [d async for d in rag.astream("Which freezers reach -86 °C?")]
    streamed = "".join(d.text for d in deltas if d.text)
    assert streamed == "ARC-ULT-420 reaches -86 °C [1]."  # the removed sentence is never shown
    assert deltas[-1].reply.text == streamed
    await rag.aclose()


def test_ask_prints_unsupported_claims_removed_sentences_and_withdrawals(capsys):
    from ragkit.answer.abstention import AbstentionCheck
    from ragkit.commands.answer import _checks_data, _print_checks

    hits = tuple(_hit(t, i) for i, t in enumerate(FREEZERS))
    g = check_grounding("ARC-ULT-420 reaches -86 °C [1]. It stores DNA for up to 2 years [1]. See [7].", FREEZERS)
    _, strict = strict_answer(g, "Which freezers reach -86 °C?")
    withdrawn = AbstentionCheck({"mean_logprob": -3.0}, False, "mean_logprob -3.000 < -1", "POLAR-ULT-90 [2]")
    reply = Reply(
        "ARC-ULT-420 reaches -86 °C [1].", sources=hits, metadata={"grounding": strict, "abstention": withdrawn}
    )
    _print_checks(reply)
    out = capsys.readouterr().out
    assert "Grounding:" in out and "unsupported: '2' appears in no source" in out
    assert "unsupported: [7] points to no source (there are 3)" in out
    assert "removed: It stores DNA for up to 2 years [1]." in out
    assert "withdrawn (mean_logprob -3.000 < -1): POLAR-ULT-90 [2]" in out
    assert set(_checks_data(reply)) == {"grounding", "abstention"}
    _print_checks(Reply("fine [1]", metadata={"grounding": check_grounding("fine [1]", FREEZERS)}))
    assert capsys.readouterr().out == ""  # nothing to say when every claim is supported
