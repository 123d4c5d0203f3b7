"""BM25 analyzer and encoder: ids kept whole, stable hashing, BM25 weights, ranking sanity; filter DSL validation."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from ragkit.errors import ConfigError
from ragkit.providers.qdrant_edge import QdrantEdgeStore
from ragkit.retrieve.filters import matches, parse_filter
from ragkit.retrieve.sparse import Bm25Analyzer, Bm25Encoder, term_id


def test_product_ids_kept_whole_and_split():
    terms = Bm25Analyzer().terms("Der LABO-288 und MED-COOL-300 im Labor.")
    assert "labo-288" in terms and "med-cool-300" in terms
    assert {"labo", "288", "med", "cool", "300"} <= set(terms)
    assert "der" not in terms and "und" not in terms


def test_unicode_casefold_and_snowball_stems_per_language():
    a = Bm25Analyzer()
    assert a.terms("KÜHLSCHRÄNKE Straße") == a.terms("kühlschränke STRASSE")
    assert a.terms("freezers")[0] == a.terms("freezer")[0] == "freezer"
    assert a.terms("running")[0] == a.terms("runs")[0] == "run"  # Snowball, not just plural endings
    assert a.terms("Die Geräte")[0] == a.terms("das Gerät")[0]
    assert a.terms("Die Kühlschränke im Labor") == a.terms("der Kühlschrank im Labor")
    assert Bm25Analyzer(stemmer="none").terms("freezers") == ["freezers"]
    assert a.terms("the of and") == [] and a.terms("und der die") == []


def test_light_stemmer_reproduces_the_first_analyzer():
    a = Bm25Analyzer(stemmer="light")
    assert a.terms("freezers glasses Geräte") == ["freezer", "glass", "gerät"]
    assert a.terms("the und nicht") == [] and a.terms("not") == ["not"]


def test_language_chosen_per_paragraph_and_per_query():
    a = Bm25Analyzer()
    text = "The laboratory refrigerators hold 288 litres.\n\nDie Laborkühlschränke haben 288 Liter Nutzinhalt."
    terms = a.terms(text)
    assert "refriger" in terms and "laborkuhlschrank" in terms  # English stems, then German stems
    assert "die" not in terms and "the" not in terms
    assert a.query_terms("Welche Laborkühlschränke gibt es?") == ["laborkuhlschrank"]
    assert a.query_terms("Which refrigerators are there?") == ["refriger"]


def test_query_without_language_evidence_uses_the_corpus_languages(tmp_path):
    enc = Bm25Encoder()
    enc.encode_documents(["Das Gerät kühlt die Proben."] * 3 + ["The freezer cools the samples."] * 7)
    assert set(enc.analyzer.query_languages) == {"en", "de"}
    assert {"gerat", "gerät"} >= set(enc.analyzer.query_terms("Geräte")) and enc.analyzer.query_terms("Geräte")
    en_only = Bm25Encoder()
    en_only.encode_documents(["The freezer cools the samples."])
    assert en_only.analyzer.query_languages == ("en",)


def test_language_without_stemmer_falls_back_and_says_so_once(caplog):
    a = Bm25Analyzer()
    with caplog.at_level("WARNING", logger="ragkit.retrieve.sparse"):
        first = a.terms("Быстрые холодильники работают")
        a.terms("Морозильники стоят")
    assert first == ["быстрые", "холодильники", "работают"]  # whole words, no stems
    assert sum("no Snowball stemmer" in r.message for r in caplog.records) == 1
    fixed = Bm25Analyzer(language="ja")
    with caplog.at_level("WARNING", logger="ragkit.retrieve.sparse"):
        assert fixed.terms("freezers") == ["freezers"]
    assert "'ja'" in caplog.records[-1].message


def test_codes_with_digits_and_parts_stay_unstemmed():
    a = Bm25Analyzer()
    assert a.terms("LKUv1610 units") == ["lkuv1610", "unit"]
    assert a.terms("MED-COOL-300s") == ["med-cool-300s", "med", "cool", "300s"]


def test_term_ids_are_stable_across_processes():
    code = "from ragkit.retrieve.sparse import term_id; print(term_id('labo-288'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert int(out) == term_id("labo-288") and 0 <= term_id("labo-288") < 2**31


def test_document_weights_follow_bm25_tf_saturation():
    enc = Bm25Encoder(k1=1.2, b=0.75, avg_doc_len=4)
    v = enc.encode_document("freezer freezer alarm door")
    w = dict(zip(v.indices, v.values))
    norm = 1.2 * (1 - 0.75 + 0.75 * 4 / 4)
    assert w[term_id("freezer")] == pytest.approx(2 * 2.2 / (2 + norm))
    assert w[term_id("alarm")] == pytest.approx(1 * 2.2 / (1 + norm))
    long_doc = enc.encode_document("alarm " + "x " * 11)
    longer = dict(zip(long_doc.indices, long_doc.values))
    assert longer[term_id("alarm")] < w[term_id("alarm")]  # longer documents weigh each term less
    assert list(v.indices) == sorted(v.indices)
    q = enc.encode_query("freezer freezer LABO-288")
    assert set(q.values) == {1.0} and len(q.indices) == 4  # freezer, labo-288, labo, 288


def test_batch_joins_the_statistics_before_it_is_weighted():
    enc = Bm25Encoder()
    short, long_ = enc.encode_documents(["a1 b1", "a1 b1 c1 d1 e1 f1"])
    assert enc.stats.avg_doc_len == 4
    norm = 1.2 * (1 - 0.75 + 0.75 * 2 / 4)
    assert dict(zip(short.indices, short.values))[term_id("a1")] == pytest.approx(2.2 / (1 + norm))
    assert Bm25Encoder.from_config(Bm25Encoder.Config(avg_doc_len=50)).avg_doc_len == 50


def test_corpus_statistics_persist_with_the_index(tmp_path, caplog):
    cfg = Bm25Encoder.Config(k1=0.9, b=0.4)
    enc = Bm25Encoder.from_config(cfg, index_dir=tmp_path)
    enc.encode_documents(["one two three four", "Der Kühlschrank kühlt."])
    again = Bm25Encoder.from_config(cfg, index_dir=tmp_path)
    assert (again.stats.docs, again.stats.total_len) == (enc.stats.docs, enc.stats.total_len) == (2, 6)
    assert again.stats.languages == {"en": 1, "de": 1}
    assert again.encode_document("one two") == enc.encode_document("one two")
    with caplog.at_level("WARNING", logger="ragkit.retrieve.sparse"):
        Bm25Encoder.from_config(Bm25Encoder.Config(stemmer="light"), index_dir=tmp_path)
    assert "re-index" in caplog.text
    (tmp_path / "bm25_stats.json").write_text("{not json")
    with pytest.raises(ConfigError, match="bm25_stats.json.*re-index"):
        Bm25Encoder.from_config(cfg, index_dir=tmp_path)


def test_every_knob_reaches_the_encoder_from_yaml(tmp_path):
    from ragkit.config import parse_pipeline
    from ragkit.pipeline import RAG

    yaml_data = {
        "index_dir": str(tmp_path),
        "sparse": {
            "type": "bm25",
            "k1": 0.9,
            "b": 0.4,
            "language": "de",
            "stopwords": False,
            "extra_stopwords": ["Preis"],
        },
    }
    enc = RAG(parse_pipeline(yaml_data)).sparse_encoder
    assert (enc.k1, enc.b, enc.analyzer.language, enc.analyzer.stopwords) == (0.9, 0.4, "de", False)
    assert enc.analyzer.terms("der Preis") == ["der"]
    assert enc.path == tmp_path / "bm25_stats.json"
    from ragkit.yaml_source import ConfigValidationError

    with pytest.raises(ConfigValidationError, match="sparse.language"):
        parse_pipeline({"sparse": {"type": "bm25", "language": "German!"}})


CORPUS = [
    "LABO-288 ultra low temperature freezer for laboratory samples",
    "LABO-150 laboratory freezer with a digital display",
    "MED-COOL-300 vaccine refrigerator with temperature alarm",
    "Kühlschrank für Impfstoffe mit Temperaturalarm und Datenlogger",
    "Quiet wine cooler for the kitchen",
    "Laboratory glassware and sample racks",
]


def bm25_scores(query: str) -> list[float]:
    """Score the corpus by the encoder's weights times the textbook IDF (what Qdrant's IDF modifier applies)."""
    enc = Bm25Encoder(avg_doc_len=sum(len(Bm25Analyzer().terms(t)) for t in CORPUS) / len(CORPUS))
    docs = [dict(zip(v.indices, v.values)) for v in enc.encode_documents(CORPUS)]
    n = len(docs)
    scores = []
    for d in docs:
        s = 0.0
        for t in enc.encode_query(query).indices:
            df = sum(t in x for x in docs)
            s += math.log(1 + (n - df + 0.5) / (df + 0.5)) * d.get(t, 0.0)
        scores.append(s)
    return scores


def bm25_rank(query: str) -> list[int]:
    scores = bm25_scores(query)
    return sorted((i for i in range(len(scores)) if scores[i] > 0), key=lambda i: -scores[i])


@pytest.mark.parametrize(
    "query, best",
    [
        ("LABO-288", 0),
        ("labo 288", 0),
        ("LABO-150 freezer", 1),
        ("MED-COOL-300", 2),
        ("Impfstoffe Kühlschrank", 3),
        ("wine", 4),
        ("vaccine alarm", 2),
    ],
)
def test_ranking_sanity(query, best):
    assert bm25_rank(query)[0] == best


async def test_edge_store_with_idf_ranks_like_bm25(tmp_path):
    enc = Bm25Encoder(avg_doc_len=sum(len(Bm25Analyzer().terms(t)) for t in CORPUS) / len(CORPUS))
    store = QdrantEdgeStore(QdrantEdgeStore.Config(path=str(tmp_path / "s")))
    await store.ensure_collection(2)
    await store.upsert(
        [f"c{i}" for i in range(len(CORPUS))],
        [[1.0, 0.0]] * len(CORPUS),
        [{"doc_id": f"d{i}", "text": t} for i, t in enumerate(CORPUS)],
        [enc.encode_document(t) for t in CORPUS],
    )
    for query in ["labo 288", "laboratory freezer", "temperature alarm vaccine"]:
        rows = await store.search_sparse(enc.encode_query(query), 3)
        assert [int(cid[1:]) for cid, _, _ in rows] == bm25_rank(query)[:3]
        assert [score for _, score, _ in rows] == pytest.approx(
            [bm25_scores(query)[int(c[1:])] for c, _, _ in rows], rel=1e-4
        )
    await store.close()


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"volume_l": {"between": 3}}, "'volume_l'.*unknown operator 'between'"),
        ({"volume_l": {"gte": 300, "lte": 100}}, "'volume_l'.*min > max"),
        ({"volume_l": {"gt": 5, "lt": 5}}, "impossible range"),
        ({"volume_l": {"gte": "a"}}, "'volume_l'.*finite number"),
        ({"m": {"any": []}}, "'m'.*non-empty list"),
        ({"m": {"any": ["a", 1]}}, "'m'.*all strings or all integers"),
        ({"m": {"any": ["a"], "gt": 1}}, "'m'.*cannot be combined"),
        ({"m": 1.5}, "'m'.*not a string, integer or bool"),
        ({"m": {}}, "'m'.*empty condition"),
        ({"": 1}, "non-empty string"),
        (["x"], "must be a mapping"),
    ],
)
def test_filter_validation_names_key(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_filter(spec)


def test_filter_reference_semantics():
    p = {"category": "freezer", "volume_l": 150.0, "maker": "A", "active": True, "n": 1, "tags": ["x", "y"]}
    assert matches({"category": "freezer", "volume_l": {"gte": 100, "lt": 151}, "maker": {"any": ["A", "B"]}}, p)
    assert not matches({"volume_l": {"gt": 150}}, p)
    assert matches({"active": True}, p) and not matches({"n": True}, p) and not matches({"active": 1}, p)
    assert matches({"tags": "y"}, p) and not matches({"missing": "x"}, p)
