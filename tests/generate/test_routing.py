"""Query features, routers, calibration, cascade escalation, fallbacks, route metadata and the route CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from paths import SHARED

from ragkit.errors import AuthError, ConfigError, DataError, Unavailable
from ragkit.generate.classifier import ClassifierRouter, load_examples
from ragkit.generate.query_features import FEATURE_NAMES, extract_features
from ragkit.generate.routed import RoutedGenerator
from ragkit.generate.routing_data import build_routing_data, evaluate_router
from ragkit.generate.rules import CascadeRouter, RoutingExample, RuleRouter, routing_table
from ragkit.testing import FakeGenerator
from ragkit.types import Chunk, Hit, Message, Reply, Usage

COMPARISON = "Were Scott Derrickson and Ed Wood of the same nationality?"
BRIDGE = "What government position was held by the woman who portrayed Corliss Archer in the film Kiss and Tell?"
SIMPLE = "In what country is Normandy located?"


class FailingGenerator(FakeGenerator):
    """Raises ``error`` on every call."""

    def __init__(self, error: Exception, **kw) -> None:
        super().__init__(**kw)
        self.error = error

    async def generate(self, messages, **kw):
        self.requests.append({"messages": list(messages)})
        raise self.error


def ask(q: str) -> list[Message]:
    return [Message("system", "Answer from the sources."), Message("user", q)]


# ---- features -------------------------------------------------------------------------------------------------


def test_english_features():
    f = extract_features(BRIDGE)
    assert f.question_type == "what" and not f.is_german
    assert f.relative_clauses >= 1 and f.described_relatives == 1
    assert "Corliss Archer" in f.entities
    c = extract_features("Who is older, Annie Morton or Terry Richardson?")
    assert c.question_type == "who" and c.comparison >= 1 and c.alternatives == 1
    assert c.entities == ("Annie Morton", "Terry Richardson")
    assert extract_features(COMPARISON).question_type == "yesno"
    assert extract_features("The arena can seat how many people?").wh_late


def test_german_features():
    f = extract_features("Welcher Kühlschrank ist größer als der MED-COOL-300, und was kostet er?")
    assert f.is_german and f.question_type == "which"
    assert f.comparison >= 2 and f.multi_part >= 1 and f.tool_markers >= 2
    assert extract_features("Was kostet der LABO-288?").question_type == "what"
    assert extract_features("Was Ed Wood an American director?").question_type == "yesno"  # English "was"
    assert extract_features("Ist der LABO-288 günstiger als der LABO-300?").question_type == "yesno"
    for q, t in [
        ("Wer baute den LABO-288?", "who"),
        ("Wann kam er auf den Markt?", "when"),
        ("Wo wird er gebaut?", "where"),
        ("Wie viele Liter hat er?", "how"),
        ("Warum ist er so teuer?", "why"),
        ("Ob er leise ist?", "yesno"),
    ]:
        assert extract_features(q).question_type == t, q
    g = extract_features("Nenne den Hersteller des Geräts, das unter 500 Euro kostet.")
    assert g.described_relatives == 1 and g.possessive_chains >= 1 and g.tool_markers >= 2


def test_multi_hop_cues_english_and_german():
    f = extract_features(
        "What is the name of the executive producer of the film that has a score composed by Jerry Goldsmith?"
    )
    assert f.entity_in_relative == 1 and f.reduced_relatives == 1
    d = extract_features("What occupation do Chris Menges and Aram Avakian share?").as_dict()
    assert d["entity_pairs"] == 1 and d["longest_entity"] == 2 and d["deictic"] == 0
    assert extract_features("In what month is the annual documentary film festival?").noun_chain == 4
    assert extract_features("D1NZ is a series based on what oversteering technique?").n_acronyms == 1
    assert extract_features("What made emigration to these colonies attractive?").deictic == 1
    g = extract_features("Welcher Film, gespielt von Til Schweiger, lief 2003, und wer hat diesen gedreht?")
    assert g.is_german and g.reduced_relatives == 1 and g.deictic == 1
    assert extract_features("Sind Anna Seghers und Christa Wolf beide aus Deutschland?").entity_pairs == 1


def test_product_ids_whole_and_case_insensitive():
    f = extract_features("Is labo-288 cheaper than MED-COOL-300 or Med-Cool-300x or XLABO-7b or LABO-288-9?")
    assert f.product_ids == ("LABO-288", "MED-COOL-300")
    assert extract_features("compare ab-1 and ABC-DEF-22.").product_ids == ("AB-1", "ABC-DEF-22")


def test_vector_order_numbers_and_hits():
    f = extract_features('When did "Shut Up, Make Love" come out, in 1991 or 2003?')
    v = f.as_vector()
    assert v.dtype == np.float32 and v.shape == (len(FEATURE_NAMES),)
    d = f.as_dict()
    assert d["n_years"] == 2 and d["n_quoted"] == 1 and d["q_when"] == 1 and d["has_hits"] == 0
    hits = [Hit(Chunk(f"c{i}", doc, "t", 0, 1), s) for i, (doc, s) in enumerate([("a", 0.9), ("b", 0.6), ("a", 0.5)])]
    h = extract_features("What is it?", hits)
    assert h.has_hits and h.top_score_margin == pytest.approx(0.3) and h.distinct_docs == 2


# ---- routers --------------------------------------------------------------------------------------------------


def test_rule_router_decides_and_explains():
    r = RuleRouter()
    strong = r.decide(COMPARISON)
    assert strong.route == "strong" and strong.generator == "strong" and strong.score >= strong.threshold
    assert "comparison" in strong.reason and strong.features["comparison"] >= 1
    local = r.decide(SIMPLE)
    assert local.route == "local" and local.score < local.threshold and "score" in local.reason
    custom = RuleRouter(
        {"threshold": 0.1, "rules": [{"feature": "n_product_ids", "weight": 0.5}], "strong_generator": "api"}
    )
    assert custom.decide("Preis von LABO-288?").generator == "api"
    assert custom.decide(COMPARISON).route == "local"


def _toy_examples() -> list[RoutingExample]:
    simple = [
        SIMPLE,
        "Who was the Norse leader?",
        "When were the Normans in Normandy?",
        "What is France a region of?",
        "Who ruled the duchy?",
        "What century did the Normans first gain their identity?",
    ]
    complex_ = [
        COMPARISON,
        BRIDGE,
        "Who is older, Annie Morton or Terry Richardson?",
        "Are Local H and For Against both from the United States?",
        "What is the county seat of the county where East Lempster, New Hampshire is located?",
        "Which band, Letters to Cleo or Screaming Trees, had more members?",
    ]
    return [RoutingExample(q, "simple") for q in simple] + [RoutingExample(q, "complex") for q in complex_]


def test_classifier_trains_saves_and_loads(tmp_path):
    r = ClassifierRouter({"l2": 1.0})
    assert r.train(_toy_examples()) >= 0.9
    assert r.decide(COMPARISON).route == "strong" and r.decide(SIMPLE).route == "local"
    assert "logistic" in r.decide(SIMPLE).reason
    path = tmp_path / "w.json"
    r.save(path)
    loaded = ClassifierRouter({"weights_path": str(path)})
    assert loaded.probability(BRIDGE) == pytest.approx(r.probability(BRIDGE))
    assert ClassifierRouter({"weights_path": str(path), "threshold": 0.99}).threshold == 0.99


def test_classifier_with_embedding_collaborator():
    def embed(text: str) -> list[float]:
        return [float("," in text), float(len(text) > 60)]

    r = ClassifierRouter(embed=embed)
    r.train(_toy_examples())
    assert r.embedding_dim == 2 and r.coef.shape == (len(FEATURE_NAMES) + 2,)


class _VectorEmbedder:
    """A sync ``encode`` like OnnxMiniLMEmbedder's, from two surface cues; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts):
        self.calls += 1
        return np.array([[float("," in t), float(len(t) > 60)] for t in texts], dtype=np.float32)


def test_classifier_from_config_uses_the_embedder_collaborator(tmp_path):
    embedder = _VectorEmbedder()
    r = ClassifierRouter.from_config({"use_query_embedding": True, "embedding_l2": 1.0}, embedder=embedder)
    r.train(_toy_examples())
    assert r.embedding_dim == 2 and embedder.calls == 1  # one batch for all training queries
    path = tmp_path / "w.json"
    r.save(path)
    loaded = ClassifierRouter.from_config({"weights_path": str(path), "use_query_embedding": True}, embedder=embedder)
    assert loaded.probability(BRIDGE) == pytest.approx(r.probability(BRIDGE))
    vector = embedder.encode([BRIDGE])[0]
    calls = embedder.calls
    given = loaded.decide(BRIDGE, query_vector=vector)  # a vector retrieval already computed: no second embedding
    assert embedder.calls == calls and given.score == pytest.approx(loaded.probability(BRIDGE))
    assert loaded.decide(BRIDGE, query_vector=[1.0, 0.0]).score != pytest.approx(given.score)
    with pytest.raises(ConfigError, match="use_query_embedding"):
        ClassifierRouter.from_config({"weights_path": str(path)}, embedder=embedder)
    with pytest.raises(ConfigError, match="collaborator 'embedder'"):
        ClassifierRouter.from_config({"use_query_embedding": True})
    with pytest.raises(ConfigError, match="encode"):
        ClassifierRouter.from_config({"use_query_embedding": True}, embedder=object())


def test_calibration_hits_target_share():
    examples = [RoutingExample(q, "simple") for q in _toy_examples_varied()] + _toy_examples()
    r = ClassifierRouter()
    r.train(_toy_examples())
    for target in (0.2, 0.5, 0.8):
        r.calibrate(examples, target)
        share = sum(r.decide(e.query).route == "strong" for e in examples) / len(examples)
        assert share == pytest.approx(target, abs=0.05)


def _toy_examples_varied() -> list[str]:
    names = ["Anna", "Bert", "Carla", "Dora", "Emil", "Fritz"]
    return [
        f"What did {' and '.join(names[: i % 6 + 1])} write {'about it ' * (i // 6)}in part {i}?" for i in range(28)
    ]


# ---- config errors --------------------------------------------------------------------------------------------


def test_bad_configs_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match="threshold"):
        RuleRouter({"threshold": 1.5})
    with pytest.raises(ConfigError, match="min_confidence"):
        CascadeRouter({"min_confidence": -0.1})
    with pytest.raises(ConfigError, match="feature"):
        RuleRouter({"rules": [{"feature": "nope", "weight": 0.5}]})
    with pytest.raises(ConfigError, match="abstain_patterns"):
        CascadeRouter({"abstain_patterns": ["(unclosed"]})
    with pytest.raises(ConfigError, match="strong_generator.*'gpt'.*not defined"):
        RoutedGenerator(RuleRouter({"strong_generator": "gpt"}), {"local": FakeGenerator(), "strong": FakeGenerator()})
    with pytest.raises(ConfigError, match="fallback_chain.*'backup'"):
        RoutedGenerator(RuleRouter(), {"local": FakeGenerator(), "strong": FakeGenerator()}, ["backup"])
    only_simple = tmp_path / "simple.jsonl"
    only_simple.write_text(json.dumps({"query": "What?", "label": "simple"}) + "\n")
    with pytest.raises(ConfigError, match="'complex'"):
        ClassifierRouter().train(load_examples(only_simple))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"query": "What?", "label": "simple"}) + "\n" + json.dumps({"query": "Hm", "label": "hard"}) + "\n"
    )
    with pytest.raises(DataError, match="bad.jsonl:2: field 'label'"):
        load_examples(bad)
    with pytest.raises(ConfigError, match="weights_path"):
        ClassifierRouter({"weights_path": str(tmp_path / "missing.json")})


# ---- routed generation: fallbacks, escalation, metadata ---------------------------------------------------------

PRICES = {
    "local": {"input_per_mtok": 0.0, "output_per_mtok": 0.0},
    "strong": {"input_per_mtok": 2.0, "output_per_mtok": 10.0},
}


async def test_routes_and_records_metadata():
    local, strong = FakeGenerator(["local answer"], id="l"), FakeGenerator(["strong answer"], id="s")
    g = RoutedGenerator(RuleRouter(), {"local": local, "strong": strong}, ["local", "strong"], prices=PRICES)
    reply = await g.generate(ask(COMPARISON))
    route = reply.metadata["route"]
    assert reply.text == "strong answer" and len(strong.requests) == 1 and not local.requests
    assert route["route"] == "strong" and route["generator"] == "strong" and route["reason"]
    assert route["features"]["comparison"] >= 1 and route["threshold"] == 0.5
    assert route["fallbacks"] == ["local"] and route["fallbacks_taken"] == [] and route["escalations"] == []
    assert route["cost_usd"] == pytest.approx((1 * 2.0 + 2 * 10.0) / 1e6)
    reply = await g.generate(ask(SIMPLE))
    assert reply.text == "local answer" and reply.metadata["route"]["route"] == "local"


async def test_fallback_on_provider_error_and_on_missing_config():
    local = FakeGenerator(["local answer"], id="l")
    for error in (Unavailable("down", provider="api"), ConfigError("environment variable OPENAI_API_KEY is not set")):
        strong = FailingGenerator(error, id="s")
        g = RoutedGenerator(RuleRouter(), {"local": local, "strong": strong}, ["strong", "local"])
        reply = await g.generate(ask(COMPARISON))
        route = reply.metadata["route"]
        assert reply.text == "local answer" and route["planned_generator"] == "strong" and route["generator"] == "local"
        assert route["fallbacks_taken"] == [
            {"generator": "strong", "error": type(error).__name__, "message": str(error)}
        ]


async def test_last_failure_is_raised():
    g = RoutedGenerator(
        RuleRouter(),
        {"local": FailingGenerator(AuthError("bad key")), "strong": FailingGenerator(Unavailable("down"))},
        ["strong", "local"],
    )
    with pytest.raises(AuthError):
        await g.generate(ask(COMPARISON))


@pytest.mark.parametrize(
    "local_reply, validate, expected",
    [
        (Reply("I don't know, the sources do not say."), None, "abstained"),
        (Reply("Das steht nicht in den Quellen."), None, "abstained"),
        (Reply("Paris", metadata={"mean_logprob": -2.5}), None, "low confidence"),
        (Reply("not json"), lambda r: r.text.startswith("{"), "failed validation"),
    ],
)
async def test_cascade_escalates_on_each_signal(local_reply, validate, expected):
    local, strong = FakeGenerator([local_reply], id="l"), FakeGenerator(["strong answer"], id="s")
    g = RoutedGenerator(CascadeRouter(validate=validate), {"local": local, "strong": strong}, prices=PRICES)
    reply = await g.generate(ask(SIMPLE))
    route = reply.metadata["route"]
    assert reply.text == "strong answer" and len(local.requests) == 1 and len(strong.requests) == 1
    assert route["escalations"][0]["from"] == "local" and route["escalations"][0]["to"] == "strong"
    assert expected in route["escalations"][0]["reason"]
    assert [c["generator"] for c in route["calls"]] == ["local", "strong"]


async def test_cascade_keeps_confident_local_answer_and_survives_failed_escalation():
    local = FakeGenerator([Reply("Paris", usage=Usage(5, 1), metadata={"mean_logprob": -0.05})], id="l")
    strong = FakeGenerator(["strong"], id="s")
    g = RoutedGenerator(CascadeRouter(), {"local": local, "strong": strong})
    reply = await g.generate(ask(SIMPLE))
    assert reply.text == "Paris" and not strong.requests and reply.metadata["route"]["escalations"] == []
    g = RoutedGenerator(
        CascadeRouter(), {"local": FakeGenerator(["I don't know"]), "strong": FailingGenerator(Unavailable("down"))}
    )
    reply = await g.generate(ask(SIMPLE))
    assert reply.text == "I don't know" and reply.metadata["route"]["escalations"][0]["failed"] == "Unavailable"


async def test_cascade_first_stage_sends_hard_queries_straight_to_strong():
    local, strong = FakeGenerator(["l"]), FakeGenerator(["s"])
    g = RoutedGenerator(CascadeRouter(first_stage=RuleRouter()), {"local": local, "strong": strong})
    reply = await g.generate(ask(COMPARISON))
    assert reply.text == "s" and not local.requests and reply.metadata["route"]["reason"].startswith("first stage")


async def test_stream_carries_route_metadata():
    g = RoutedGenerator(RuleRouter(), {"local": FakeGenerator(["hello there"]), "strong": FakeGenerator(["x"])})
    deltas = [d async for d in g.stream(ask(SIMPLE))]
    assert deltas[-1].reply.metadata["route"]["route"] == "local"
    assert "".join(d.text for d in deltas).strip() == "hello there"


def test_routing_table():
    rows = routing_table(
        RoutedGenerator(CascadeRouter(), {"local": FakeGenerator(), "strong": FakeGenerator()}, ["local", "strong"])
    )
    assert [r["route"] for r in rows] == ["local", "strong"] and rows[0]["fallbacks"] == ["strong"]
    assert "abstains" in rows[1]["when"]
    assert routing_table(RuleRouter())[1]["when"] == "rule score >= 0.5"


# ---- labels from measured local answers -------------------------------------------------------------------------


def record(question, *, unanswerable=False, abstained=False, contains=None, f1=None, dense=0.6):
    return {
        "question": question,
        "unanswerable": unanswerable,
        "abstained": abstained,
        "contains": contains,
        "f1": f1,
        "sources": [{"doc_id": "d1", "score": 1.0, "rank_scores": {"dense": dense}}],
    }


def test_build_data_labels_each_question_by_whether_the_local_answer_was_right(tmp_path):
    records = [
        record("Who led the Norse?", contains=1.0, f1=0.4),  # right by containment, not by F1 >= 0.5
        record("Who gave Normandy its name in 1000?", unanswerable=True, abstained=False),  # answered: wrong
        record("What is France a region of?", unanswerable=True, abstained=True),  # abstained: right
        record("Which film starred the woman who played Corliss Archer?", contains=0.0, f1=0.0, dense=0.3),
    ]
    details = tmp_path / "answers.jsonl"
    details.write_text("".join(json.dumps(r) + "\n" for r in records))
    counts = build_routing_data(details, tmp_path / "routing.jsonl")
    assert counts == {"examples": 4, "simple": 2, "complex": 2}
    examples = load_examples(tmp_path / "routing.jsonl")
    assert [e.label for e in examples] == ["simple", "complex", "simple", "complex"]
    assert examples[3].hits[0].rank_scores == {"dense": 0.3}
    assert extract_features(examples[3].query, examples[3].hits).top_dense_score == pytest.approx(0.3)
    by_f1 = build_routing_data(records, tmp_path / "f1.jsonl", min_f1=0.5)
    assert by_f1 == {"examples": 4, "simple": 1, "complex": 3}
    (tmp_path / "bad.jsonl").write_text(json.dumps({"question": "q"}) + "\n")
    with pytest.raises(DataError, match="bad.jsonl:1: .*unanswerable"):
        build_routing_data(tmp_path / "bad.jsonl", tmp_path / "x.jsonl")


def _labelled(n: int = 60) -> list[RoutingExample]:
    """Questions whose best dense score says whether the (imagined) local model got them right, with noise."""
    rng = np.random.default_rng(3)
    out = []
    for i in range(n):
        dense = float(rng.uniform(0.2, 0.9))
        right = dense + rng.normal(0, 0.1) > 0.5
        hit = Hit(Chunk(f"c{i}", f"d{i}", "", 0, 0), 1.0, {"dense": dense})
        out.append(RoutingExample(f"What is item number {i}?", "simple" if right else "complex", (hit,)))
    return out


def test_calibrating_to_a_local_accuracy_keeps_the_largest_share_that_meets_it():
    examples = _labelled()
    router = ClassifierRouter()
    router.train(examples)
    p = router.probabilities([e.query for e in examples], [e.hits for e in examples])
    for target in (0.8, 0.95):
        t = router.calibrate_local_accuracy(examples, target)
        kept = [e for e, q in zip(examples, p) if q < t]
        assert kept and sum(e.label == "simple" for e in kept) / len(kept) >= target
        # One more question kept local (the next by score) would fall under the target.
        nxt = min((q for q in p if q >= t), default=None)
        if nxt is not None:
            more = [e for e, q in zip(examples, p) if q <= nxt]
            assert sum(e.label == "simple" for e in more) / len(more) < target
    assert router.calibrate_local_accuracy(examples, 0.8) <= router.calibrate_local_accuracy(examples, 0.5)
    result = evaluate_router(router, examples)
    assert result["kept_local_accuracy"] >= 0.5 and 0 < result["all_local_accuracy"] < 1
    assert result["quality_lost_bound"] == pytest.approx(result["local_share"] * (1 - result["kept_local_accuracy"]))
    with pytest.raises(ConfigError, match="target_local_accuracy"):
        router.calibrate_local_accuracy(examples, 1.5)


def test_route_cli_round_trip_on_measured_labels(tmp_path, capsys):
    from ragkit.cli import main

    data = tmp_path / "routing.jsonl"
    rows = [
        {
            "query": e.query,
            "label": e.label,
            "hits": [{"doc_id": "d", "score": 1.0, "rank_scores": dict(e.hits[0].rank_scores)}],
        }
        for e in _labelled()
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    w = str(tmp_path / "w.json")
    assert main(["route", "train", "--data", str(data), "--out", w]) == 0
    assert (
        main(["route", "calibrate", "--weights", w, "--data", str(data), "--target-local-accuracy", "0.9", "--json"])
        == 0
    )
    calibrated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert calibrated["kept_local_accuracy"] >= 0.9 and 0 < calibrated["strong_share"] < 1
    assert main(["route", "eval", "--weights", w, "--data", str(data), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 60 and out["kept_local_accuracy"] >= 0.9
    assert out["local_share"] == pytest.approx(1 - calibrated["strong_share"])
    assert main(["route", "eval", "--weights", w, "--data", str(data)]) == 0
    assert "kept local" in capsys.readouterr().out


async def test_pipeline_says_the_question_went_strong_and_fell_back_without_an_api_key(tmp_path, monkeypatch):
    from ragkit.config import parse_pipeline
    from ragkit.pipeline import RAG
    from ragkit.testing import FakeEmbedder
    from ragkit.types import Document

    monkeypatch.delenv("RAGKIT_TEST_NO_SUCH_KEY", raising=False)
    config = parse_pipeline(
        {
            "index_dir": str(tmp_path / "idx"),
            "generators": {
                "local": {"type": "llamacpp"},
                "strong": {"type": "openai", "model": "gpt-4o-mini", "api_key_env": "RAGKIT_TEST_NO_SUCH_KEY"},
            },
            "router": {"type": "rules", "threshold": 0.0},  # everything is routed strong
            "routing": {"fallback_chain": ["local"]},
        }
    )
    local = FakeGenerator(["Rollo [1]"], id="local")
    rag = RAG(config, generators={"local": local}, embedder=FakeEmbedder(32))
    await rag.aindex([Document("normans", "The Norse raiders were led by Rollo.", {"title": "Normans"})])
    reply = await rag.aask("Who led the Norse raiders?")
    await rag.aclose()
    route = reply.metadata["route"]
    assert reply.text == "Rollo [1]" and route["planned_generator"] == "strong" and route["generator"] == "local"
    assert route["fell_back"] is True and route["fallbacks_taken"][0]["error"] == "ConfigError"
    assert "RAGKIT_TEST_NO_SUCH_KEY is not set" in route["summary"]
    assert route["summary"].startswith("routed to strong (strong); strong failed (ConfigError")
    assert route["summary"].endswith("answered by local")


@pytest.mark.skipif(not (SHARED / "squad2" / "rag" / "qa.jsonl").exists(), reason="shared data not present")
def test_build_data_answers_with_the_real_local_model_first(tmp_path, capsys):
    from ragkit.cli import main

    rows = [json.loads(line) for line in (SHARED / "squad2" / "rag" / "qa.jsonl").read_text().splitlines()[:3]]
    passages = [json.loads(line) for line in (SHARED / "squad2" / "rag" / "passages.jsonl").read_text().splitlines()]
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(p) + "\n" for p in passages[:2]))
    config = tmp_path / "p.yaml"
    config.write_text(
        f"index_dir: {tmp_path / 'idx'}\n"
        "generators: {local: {type: llamacpp, model: smollm2, n_threads: 1, max_output_tokens: 16, logprobs: true}}\n"
        "budget: {reserved_output_tokens: 16}\n"
    )
    out = tmp_path / "routing.jsonl"
    args = ["route", "build-data", "--qa", str(tmp_path / "qa.jsonl"), "--corpus", str(tmp_path / "corpus.jsonl")]
    assert main([*args, "--config", str(config), "--out", str(out), "--json"]) == 0
    counts = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    answers = [json.loads(line) for line in (tmp_path / "routing.answers.jsonl").read_text().splitlines()]
    examples = load_examples(out)
    assert counts["examples"] == len(examples) == len(answers) == 3
    assert [e.label == "simple" for e in examples] == [
        bool(a["abstained"]) if a["unanswerable"] else bool(a["contains"]) for a in answers
    ]
    assert all(a["mean_logprob"] < 0 and a["sources"] and "grounding" in a for a in answers)
