"""Usage ledger: timed stages with an injected clock, costs, JSONL, summaries."""

from __future__ import annotations

import json

import pytest

from ragkit.answer.ledger import JsonlLedgerWriter, Ledger, UsageReport, percentile, read_usage_reports, summarise
from ragkit.errors import DataError
from ragkit.model_info import DEFAULT_PRICES, FREE, Price, PriceTable
from ragkit.types import Reply, Usage


class Clock:
    """Advances by whatever the test says; stands in for perf_counter."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_stage_timing_tokens_and_cost_with_an_injected_clock():
    clock = Clock()
    ledger = Ledger(clock=clock, request_id="r1")
    with ledger.stage("embed", model="text-embedding-3-small") as st:
        st.embedding_tokens = 1_000_000
        clock.now += 0.020
    with ledger.stage("retrieve"):
        clock.now += 0.005
    with ledger.stage("generate", provider="openai") as st:
        st.add_reply(
            Reply(
                "hi",
                model="gpt-4o-mini-2024-07-18",
                usage=Usage(2_000_000, 500_000, 1_000_000),
                metadata={"retries": 2},
            )
        )
        clock.now += 1.5
    report = ledger.report()
    embed, retrieve, gen = report.stages
    assert embed.latency_ms == pytest.approx(20.0) and retrieve.latency_ms == pytest.approx(5.0)
    assert gen.latency_ms == pytest.approx(1500.0) and gen.retries == 2 and gen.model == "gpt-4o-mini-2024-07-18"
    assert embed.cost_usd == pytest.approx(0.02)
    # 1M fresh input at 0.15, 1M cached at 0.075, 0.5M output at 0.60 (USD per 1M).
    assert gen.cost_usd == pytest.approx(0.15 + 0.075 + 0.30)
    assert report.cost_usd == pytest.approx(0.02 + 0.525)
    assert (
        report.input_tokens == 2_000_000 and report.cached_tokens == 1_000_000 and report.embedding_tokens == 1_000_000
    )
    assert report.latency_ms == pytest.approx(1525.0)
    assert report.unpriced_models == ()


def test_a_failing_stage_is_recorded_with_its_error():
    clock = Clock()
    ledger = Ledger(clock=clock)
    with pytest.raises(RuntimeError):
        with ledger.stage("rerank"):
            clock.now += 0.25
            raise RuntimeError("boom")
    (rec,) = ledger.report().stages
    assert rec.error == "RuntimeError" and rec.latency_ms == pytest.approx(250.0)


def test_local_models_are_free_and_unknown_models_are_flagged():
    ledger = Ledger(clock=Clock())
    ledger.record("generate", model="smollm2", provider="llamacpp", input_tokens=500, output_tokens=50)
    ledger.record("generate", model="mystery-1", provider="acme", input_tokens=10, output_tokens=5)
    report = ledger.report()
    assert report.stages[0].cost_usd == 0.0
    assert report.stages[1].cost_usd is None
    assert report.unpriced_models == ("mystery-1",)
    assert report.cost_usd == 0.0


def test_compression_savings_priced_at_the_generators_input_rate():
    ledger = Ledger(clock=Clock())
    ledger.note_compression(3_000_000, 1_000_000)
    ledger.record("generate", model="gpt-4.1", input_tokens=1_000_000, output_tokens=0)
    report = ledger.report()
    assert report.compression_tokens_saved == 2_000_000
    assert report.compression_savings_usd == pytest.approx(2 * DEFAULT_PRICES["gpt-4.1"].input)


def test_price_table_overrides_and_validation(tmp_path):
    table = PriceTable.from_mapping(
        {"my-model": {"input": 1.0, "output": 2.0}, "gpt-4o": {"input": 9, "output": 9, "cached": 1}}
    )
    assert table.price_for("my-model") == Price(1.0, 2.0, None)
    assert table.price_for("gpt-4o").input == 9
    assert table.price_for("gpt-4o-mini") == DEFAULT_PRICES["gpt-4o-mini"]  # longest prefix wins
    assert table.price_for("anything", provider="ollama") is FREE
    assert Price(1.0, 2.0).cost(1_000_000, 0, 500_000) == pytest.approx(1.0)  # cached billed at input rate when unknown
    path = tmp_path / "prices.yaml"
    path.write_text("local-x:\n  input: 0.5\n  output: 1.5\n  cached: 0.1\n")
    assert PriceTable.from_yaml(path).price_for("local-x") == Price(0.5, 1.5, 0.1)
    path.write_text("bad:\n  input: -1\n")
    with pytest.raises(DataError, match="bad: input must be a non-negative number"):
        PriceTable.from_yaml(path)
    with pytest.raises(DataError, match="unknown key"):
        PriceTable.from_mapping({"m": {"input": 1, "outptu": 2}})


def test_jsonl_writer_round_trip_and_bad_line(tmp_path):
    path = tmp_path / "logs" / "usage.jsonl"
    writer = JsonlLedgerWriter(path)
    for i in range(3):
        clock = Clock()
        ledger = Ledger(clock=clock, request_id=f"r{i}")
        with ledger.stage("generate", model="gpt-4o") as st:
            st.add_usage(Usage(1000, 100))
            clock.now += 0.1 * (i + 1)
        writer.write(ledger if i % 2 else ledger.report())
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["request_id"] == "r0"
    reports = read_usage_reports(path)
    assert [r.request_id for r in reports] == ["r0", "r1", "r2"]
    assert isinstance(reports[0], UsageReport) and reports[2].stages[0].latency_ms == pytest.approx(300.0)
    assert json.loads(Ledger(clock=Clock(), request_id="x").to_json())["request_id"] == "x"
    with path.open("a") as f:
        f.write("{not json}\n")
    with pytest.raises(DataError, match=r"usage.jsonl:4"):
        read_usage_reports(path)


def test_summarise_totals_percentiles_and_cost():
    reports = []
    for i in range(1, 21):
        clock = Clock()
        ledger = Ledger(clock=clock)
        with ledger.stage("retrieve"):
            clock.now += i / 1000
        with ledger.stage("generate", model="gpt-4o-mini") as st:
            st.add_usage(Usage(1000, 100))
            clock.now += i / 100
        ledger.note_compression(300, 100)
        reports.append(ledger.report() if i % 2 else ledger.report().to_dict())
    summary = summarise(reports)
    assert summary.requests == 20 and summary.input_tokens == 20_000 and summary.output_tokens == 2000
    assert summary.stages["retrieve"].p50_ms == pytest.approx(10.5)
    assert summary.stages["generate"].p95_ms == pytest.approx(percentile([i * 10 for i in range(1, 21)], 95))
    assert summary.stages["generate"].p95_ms == pytest.approx(190.5)
    assert summary.cost_usd == pytest.approx(20 * (1000 * 0.15 + 100 * 0.60) / 1e6)
    assert summary.compression_tokens_saved == 4000
    assert list(summary.stages) == ["retrieve", "generate"]
    assert "generate" in summary.table() and "p95" in summary.table()


def test_percentile_edges():
    assert percentile([], 50) == 0.0
    assert percentile([7], 95) == 7
    assert percentile([1, 2, 3, 4], 50) == 2.5


def test_generator_ids_with_provider_prefix_are_priced():
    from ragkit.model_info import FREE, PriceTable

    table = PriceTable()
    assert table.price_for("llamacpp:smollm2-135m-instruct") == FREE
    assert table.price_for("openai:gpt-4o-mini") == table.price_for("gpt-4o-mini") is not None
    assert table.price_for("llama3.2:3b") is None  # an Ollama tag is not a provider prefix
