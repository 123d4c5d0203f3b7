"""Abstention from measured signals: the signals themselves, the thresholds, and the model's own log-probability
on the real bundled SmolLM2 through the pipeline."""

from __future__ import annotations

import math

import pytest

from ragkit.answer.abstention import AbstentionConfig, abstention_signals, check_abstention, decide
from ragkit.answer.grounding import GroundingConfig, checked_reply, may_rewrite
from ragkit.config import parse_pipeline
from ragkit.errors import ConfigError
from ragkit.language import ABSTENTION_DE, ABSTENTION_EN
from ragkit.types import Chunk, Document, Hit, Reply

NORMANS = (
    "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, a region in "
    "France. They were descended from Norse raiders from Denmark, Iceland and Norway under their leader Rollo."
)
STEAM = "A steam engine is a heat engine that performs mechanical work using steam as its working fluid."


def hits(*texts: str, dense: float | None = 0.7) -> list[Hit]:
    return [
        Hit(Chunk(f"c{i}", f"d{i}", t, 0, len(t)), 1.0 - i / 10, {} if dense is None else {"dense": dense - i / 10})
        for i, t in enumerate(texts)
    ]


def test_signals_measure_retrieval_coverage_support_and_confidence():
    s = abstention_signals("Who was the leader of the Norse?", "Rollo [1]", hits(NORMANS, STEAM), [1], -0.25)
    assert s["retrieval_score"] == pytest.approx(0.7)
    assert s["question_coverage"] == 1.0  # leader, norse: both in the Normans passage
    assert s["answer_support"] == 1.0
    assert s["mean_logprob"] == -0.25
    made_up = abstention_signals("Who was the leader of the Norse?", "Harald Bluetooth [1]", hits(NORMANS), [1])
    assert made_up["answer_support"] == 0.0 and made_up["mean_logprob"] is None
    off_topic = abstention_signals("Which pharaoh built the pyramid at Giza?", "Rollo", hits(NORMANS, STEAM), [])
    assert off_topic["question_coverage"] == 0.0
    assert abstention_signals("q?", "a", hits(NORMANS, dense=None))["retrieval_score"] is None


def test_answer_support_looks_at_the_cited_sources_first():
    s = abstention_signals("What drives the engine?", "steam [2]", hits(NORMANS, STEAM), [2])
    assert s["answer_support"] == 1.0
    wrong_cite = abstention_signals("What drives the engine?", "steam [1]", hits(NORMANS, STEAM), [1])
    assert wrong_cite["answer_support"] == 0.0


def test_decide_names_the_first_signal_under_its_threshold():
    config = AbstentionConfig(min_retrieval_score=0.5, min_mean_logprob=-1.0)
    assert decide({"retrieval_score": 0.6, "mean_logprob": -0.5}, config) is None
    assert decide({"retrieval_score": 0.4, "mean_logprob": -2.0}, config) == "retrieval_score 0.400 < 0.5"
    assert decide({"retrieval_score": 0.6, "mean_logprob": -2.0}, config) == "mean_logprob -2.000 < -1"
    assert decide({"retrieval_score": None, "mean_logprob": None}, config) is None  # a missing signal is not used
    assert decide({"retrieval_score": 0.1}, AbstentionConfig(enabled=False, min_retrieval_score=0.5)) is None


def test_an_answer_that_abstains_already_is_left_alone():
    check = check_abstention("Who?", ABSTENTION_EN, hits(NORMANS), AbstentionConfig(min_answer_support=0.9))
    assert check.model_abstained and check.reason is None and check.abstained


def test_withdrawn_answer_becomes_the_phrase_in_the_question_language():
    strict = AbstentionConfig(min_answer_support=0.5)
    de = checked_reply(Reply("Harald [1]", sources=hits(NORMANS)), "Wer war der Anführer?", GroundingConfig(), strict)
    assert de.text == ABSTENTION_DE
    verdict = de.metadata["abstention"]
    assert verdict.original_text == "Harald [1]" and verdict.reason.startswith("answer_support 0.000")
    assert verdict.to_dict()["withdrawn"] is True
    kept = checked_reply(Reply("Rollo [1]", sources=hits(NORMANS)), "Who led the Norse?", GroundingConfig(), strict)
    assert kept.text == "Rollo [1]" and kept.metadata["abstention"].reason is None


def test_thresholds_are_validated_and_decide_whether_a_stream_waits():
    with pytest.raises(ConfigError, match="abstention.min_question_coverage"):
        parse_pipeline({"abstention": {"min_question_coverage": 1.5}})
    assert not may_rewrite(GroundingConfig(), AbstentionConfig())
    assert may_rewrite(GroundingConfig(mode="strict"), AbstentionConfig())
    assert may_rewrite(GroundingConfig(), AbstentionConfig(min_mean_logprob=-1.0))
    assert not may_rewrite(GroundingConfig(), AbstentionConfig(enabled=False, min_mean_logprob=-1.0))


class TestModelConfidenceOnTheBundledModel:
    """The log-probability signal comes from the real llama.cpp generator (SmolLM2-135M) through the pipeline."""

    @pytest.fixture(scope="class")
    @classmethod
    def generator(cls):
        from ragkit.providers.llamacpp import LlamaCppGenerator

        return LlamaCppGenerator.from_config(
            {"model": "smollm2", "n_ctx": 2048, "n_threads": 1, "logprobs": True, "max_output_tokens": 24}
        )

    async def ask(self, tmp_path, generator, abstention):
        from ragkit.pipeline import RAG
        from ragkit.testing import FakeEmbedder

        config = parse_pipeline(
            {"index_dir": str(tmp_path / "idx"), "abstention": abstention, "budget": {"reserved_output_tokens": 24}}
        )
        rag = RAG(config, generators={"local": generator}, embedder=FakeEmbedder(32))
        await rag.aindex([Document("normans", NORMANS, {"title": "Normans"})])
        try:
            return await rag.aask("Who was the leader of the Norse raiders?")
        finally:
            await rag.aclose()

    async def test_low_confidence_withdraws_and_high_keeps(self, tmp_path, generator):
        kept = await self.ask(tmp_path / "a", generator, {"min_mean_logprob": -100.0})
        signals = kept.metadata["abstention"].signals
        assert math.isfinite(signals["mean_logprob"]) and signals["mean_logprob"] < 0
        assert not kept.metadata["abstention"].abstained and kept.text != ABSTENTION_EN
        withdrawn = await self.ask(tmp_path / "b", generator, {"min_mean_logprob": -1e-6})
        verdict = withdrawn.metadata["abstention"]
        assert withdrawn.text == ABSTENTION_EN
        assert verdict.reason.startswith("mean_logprob") and verdict.original_text == kept.text


class TestQuestionSignalsBeforeGeneration:
    """Thresholds on the question's own signals are decided on the retrieved sources before any model runs."""

    DOCS = [
        Document("normans", NORMANS, {"title": "Normans"}),
        Document("steam", STEAM, {"title": "Steam engine"}),
    ]

    def make(self, tmp_path, **abstention):
        from ragkit.pipeline import RAG
        from ragkit.testing import FakeEmbedder, FakeGenerator

        config = parse_pipeline(
            {
                "index_dir": str(tmp_path / "idx"),
                "generators": {"local": {"type": "llamacpp"}},
                "abstention": abstention,
            }
        )
        gen = FakeGenerator(("Rollo [1]",), context_window=4096)
        rag = RAG(config, generators={"local": gen}, embedder=FakeEmbedder(32))
        rag.index(self.DOCS)
        return rag, gen

    def test_an_uncovered_question_gets_the_phrase_without_a_model_call(self, tmp_path):
        rag, gen = self.make(tmp_path, min_question_coverage=0.5)
        reply = rag.ask("Which submarine class did the Royal Navy retire in 1994?")
        assert reply.text == ABSTENTION_EN and gen.requests == []
        verdict = reply.metadata["abstention"]
        assert verdict.before_generation and verdict.reason.startswith("question_coverage 0.")
        assert verdict.to_dict()["before_generation"] is True and reply.sources
        german = rag.ask("Welche U-Boot-Klasse hat die Marine 1994 ausgemustert?")
        assert german.text == ABSTENTION_DE and gen.requests == []

    def test_a_covered_question_is_answered_and_streamed_as_it_comes(self, tmp_path):
        rag, gen = self.make(tmp_path, min_question_coverage=0.5)
        assert not may_rewrite(GroundingConfig(), rag.config.abstention)  # a question threshold holds no stream back

        async def collect():
            return [d async for d in rag.astream("Who was the leader of the Norse raiders from Denmark?")]

        from ragkit._aio import run_sync

        deltas = run_sync(collect())
        assert len([d for d in deltas if d.text]) >= 2  # streamed in pieces, not held for the checks
        final = deltas[-1].reply
        assert final.text.startswith("Rollo") and len(gen.requests) == 1
        assert final.metadata["abstention"].reason is None and not final.metadata["abstention"].before_generation

    def test_the_stream_of_an_uncovered_question_is_the_phrase_alone(self, tmp_path):
        rag, gen = self.make(tmp_path, min_question_coverage=0.5)

        async def collect():
            return [d async for d in rag.astream("Which submarine class did the Royal Navy retire in 1994?")]

        from ragkit._aio import run_sync

        deltas = run_sync(collect())
        assert [d.text for d in deltas if d.text] == [ABSTENTION_EN] and gen.requests == []
        assert deltas[-1].reply.metadata["abstention"].before_generation

    def test_without_thresholds_the_model_always_answers(self, tmp_path):
        rag, gen = self.make(tmp_path)
        reply = rag.ask("Which submarine class did the Royal Navy retire in 1994?")
        assert reply.text == "Rollo [1]" and len(gen.requests) == 1
