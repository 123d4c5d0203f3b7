"""Route before budget: the router picks the generator first, and the prompt is planned for that generator's own
window; a fallback gets a prompt re-planned for its window."""

from ragkit.config import parse_pipeline
from ragkit.errors import Unavailable
from ragkit.pipeline import RAG
from ragkit.testing import FakeEmbedder, FakeGenerator
from ragkit.types import Document

# Forty documents of ~60 words: together far more than a 600-token window holds, far less than 100k.
DOCS = [
    Document(
        f"d{i}",
        f"Freezer model F-{i} holds {100 + i} litres and reaches -{60 + i % 30} degrees. " + "filler words " * 25,
    )
    for i in range(40)
]


class Unreachable(FakeGenerator):
    """An API generator that is down: every call fails with a transient error after the retries."""

    async def generate(self, messages, **kw):
        self.requests.append({"messages": list(messages)})
        raise Unavailable("server down")


def build(tmp_path, strong: FakeGenerator, local: FakeGenerator) -> RAG:
    config = parse_pipeline(
        {
            "index_dir": str(tmp_path / "idx"),
            "generators": {"local": {"type": "llamacpp"}, "strong": {"type": "llamacpp"}},
            "router": {"type": "rules", "threshold": 0.0},  # every query goes to the strong generator
            "routing": {"fallback_chain": ["local"]},
            "retrieval": {"top_k": 40, "candidates": 40},
            "compressor": {"type": "none"},
            "budget": {"reserved_output_tokens": 100},
        }
    )
    return RAG(config, generators={"local": local, "strong": strong}, embedder=FakeEmbedder(32))


def prompt_tokens(gen: FakeGenerator, request: int = 0) -> int:
    return sum(gen.count_tokens(m.content) for m in gen.requests[request]["messages"])


async def test_api_generator_gets_a_prompt_sized_for_its_own_window(tmp_path):
    strong = FakeGenerator(("strong answer [1]",), context_window=100_000, id="strong")
    local = FakeGenerator(("local answer [1]",), context_window=600, id="local")
    rag = build(tmp_path, strong, local)
    await rag.aindex(DOCS)
    reply = await rag.aask("Which freezer holds the most litres?")
    assert reply.text == "strong answer [1]" and not local.requests
    plan = reply.metadata["plan"]
    assert plan.context_window == 100_000
    # All forty sources fit the strong window: a plan for the smallest window would have cut most of them.
    assert len(reply.sources) == 40 and prompt_tokens(strong) > 600
    await rag.aclose()


async def test_fallback_gets_a_prompt_re_planned_for_its_window(tmp_path):
    strong = Unreachable(context_window=100_000, id="strong")
    local = FakeGenerator(("local answer [1]",), context_window=600, id="local")
    rag = build(tmp_path, strong, local)
    await rag.aindex(DOCS)
    reply = await rag.aask("Which freezer holds the most litres?")
    route = reply.metadata["route"]
    assert route["planned_generator"] == "strong" and route["generator"] == "local"
    assert route["fallbacks_taken"][0]["error"] == "Unavailable"
    assert prompt_tokens(strong) > 600  # the strong generator was offered the big prompt
    assert reply.metadata["plan"].context_window == 600
    assert prompt_tokens(local) <= 600 - 100 and 0 < len(reply.sources) < 40
    await rag.aclose()


async def test_streaming_plans_for_the_routed_generator_too(tmp_path):
    strong = FakeGenerator(("streamed [1]",), context_window=100_000, id="strong")
    local = FakeGenerator(("local [1]",), context_window=600, id="local")
    rag = build(tmp_path, strong, local)
    await rag.aindex(DOCS)
    deltas = [d async for d in rag.astream("Which freezer holds the most litres?")]
    final = deltas[-1].reply
    assert final is not None and final.metadata["plan"].context_window == 100_000 and len(final.sources) == 40
    await rag.aclose()
