"""OpenTelemetry spans per stage, exported in memory by the real SDK: one ``ask`` on the real stack (MiniLM, Qdrant
edge, SmolLM2 on llama.cpp), a tool round, and the no-op path without the SDK."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ragkit import tracing
from ragkit.config import parse_pipeline
from ragkit.pipeline import RAG
from ragkit.tools.toolset import Toolset
from ragkit.types import Document, Message, ToolCall

sdk = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

DOCS = [
    Document(
        "ult", "POLAR-ULT-500 is an ultra-low freezer that reaches -86 °C and holds 500 litres.", {"title": "ULT"}
    ),
    Document("labo", "LABO-288 is a laboratory refrigerator with 288 litres, 2 to 8 °C.", {"title": "LABO-288"}),
    Document("price", "POLAR-ULT-500 costs 9,800 EUR including delivery.", {"title": "ULT price"}),
]


@pytest.fixture
def exporter():
    exporter = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_tracer_provider(provider)
    yield exporter
    tracing.use_tracer_provider(None)
    provider.shutdown()


def by_name(spans):
    out = {}
    for s in spans:
        out.setdefault(s.name, []).append(s)
    return out


@pytest.mark.slow
async def test_one_ask_exports_a_span_per_stage_with_genai_attributes(tmp_path, exporter):
    config = parse_pipeline(
        {
            "index_dir": str(tmp_path / "idx"),
            "reranker": {"type": "mmr"},
            "generators": {
                "local": {"type": "llamacpp", "model": "smollm2", "max_output_tokens": 16},
                "strong": {"type": "openai", "model": "gpt-4o-mini", "api_key_env": "RAGKIT_TEST_NO_SUCH_KEY"},
            },
            "default_generator": "local",
            "router": {"type": "rules", "local_generator": "local", "strong_generator": "strong"},
            "routing": {"fallback_chain": ["local"]},
            "budget": {"reserved_output_tokens": 16},
        }
    )
    rag = RAG(config)
    await rag.aindex(DOCS)
    exporter.clear()
    history = [Message("user", "Which freezer reaches -86 °C?"), Message("assistant", "POLAR-ULT-500 does [1].")]
    reply = await rag.aask("How much does it cost?", history=history)
    await rag.aclose()

    spans = by_name(exporter.get_finished_spans())
    for stage in ("ask", "rewrite", "retrieve", "rerank", "assemble", "plan", "compress", "generate"):
        assert stage in spans, f"no {stage} span; got {sorted(spans)}"
    (ask,) = spans["ask"]
    trace_ids = {s.context.trace_id for group in spans.values() for s in group}
    assert trace_ids == {ask.context.trace_id}, "every stage belongs to the ask's trace"
    assert spans["rerank"][0].parent.span_id == spans["retrieve"][0].context.span_id

    gen = spans["generate"][0].attributes
    report = reply.metadata["usage_report"]
    gen_record = next(r for r in report.stages if r.stage == "generate")
    assert gen["gen_ai.operation.name"] == "chat"
    assert gen["gen_ai.usage.input_tokens"] == gen_record.input_tokens > 0
    assert gen["gen_ai.usage.output_tokens"] == gen_record.output_tokens > 0
    assert gen["gen_ai.request.model"] == gen_record.model and "smollm2" in gen_record.model.lower()
    assert gen["ragkit.cost_usd"] == 0.0  # a local model is free
    assert gen["ragkit.route"] == report.route["route"] and gen["ragkit.route.generator"] == "local"
    retrieve = spans["retrieve"][0].attributes
    assert retrieve["gen_ai.operation.name"] == "retrieval"
    assert retrieve["ragkit.embedding_tokens"] == report.embedding_tokens > 0
    assert spans["rewrite"][0].attributes.get("gen_ai.usage.input_tokens", 0) > 0  # the local model rewrote it
    # The ledger records the same request: embedding tokens, the route decision, the rewritten query.
    assert report.route["generator"] == "local"
    assert reply.metadata["query"]["original"] == "How much does it cost?"
    assert "How much does it cost?" not in str([dict(s.attributes) for g in spans.values() for s in g])


async def test_tool_calls_get_execute_tool_spans(exporter):
    def price(product: str) -> str:
        """The price of a product."""
        return f"{product}: 9800 EUR"

    def broken(product: str) -> str:
        """Always fails."""
        raise ValueError("no data")

    calls = [ToolCall("c1", "price", '{"product": "ULT"}'), ToolCall("c2", "broken", '{"product": "ULT"}')]
    with Toolset([price, broken]) as toolset, tracing.span("ask"):
        done = await toolset.execute(calls)
    assert [m.is_error for m in done.messages] == [False, True]
    tools = by_name(exporter.get_finished_spans())["tool"]
    attrs = {s.attributes["gen_ai.tool.name"]: s.attributes for s in tools}
    assert attrs["price"]["gen_ai.operation.name"] == "execute_tool" and attrs["price"]["gen_ai.tool.call.id"] == "c1"
    assert "error.type" not in attrs["price"] and attrs["broken"]["error.type"] == "tool_error"


def test_a_failing_stage_marks_its_span_and_still_raises(exporter):
    with pytest.raises(KeyError):
        with tracing.span("retrieve", {"ragkit.top_k": 5, "ragkit.skip": None, "ragkit.obj": {"a": 1}}):
            raise KeyError("x")
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code.name == "ERROR" and span.events[0].name == "exception"
    assert span.attributes["ragkit.top_k"] == 5 and "ragkit.skip" not in span.attributes
    assert span.attributes["ragkit.obj"] == "{'a': 1}"


def test_traced_wraps_one_method_and_passes_the_rest(exporter):
    class Compressor:
        ratio = 0.5

        def compress(self, text):
            return text[:2]

    wrapped = tracing.traced(Compressor(), "compress", "compress")
    assert wrapped.compress("abcdef") == "ab" and wrapped.ratio == 0.5
    assert [s.name for s in exporter.get_finished_spans()] == ["compress"]
    assert tracing.traced(None, "compress", "compress") is None


def test_without_opentelemetry_every_call_is_a_no_op():
    # A fresh interpreter where importing opentelemetry fails, as when the extra is absent.
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "from ragkit import tracing\n"
        "with tracing.span('ask', {'a': 1}) as s:\n"
        "    s.set({'b': 2}); s.record_model_call(model='m', input_tokens=1); s.record_route({'route': 'local'})\n"
        "assert s is tracing.NOOP and not s.recording\n"
        "try:\n"
        "    with tracing.span('x'):\n"
        "        raise KeyError('k')\n"
        "except KeyError:\n"
        "    print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
