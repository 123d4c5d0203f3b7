"""The OpenAI-compatible path against a real local server: llama-cpp-python's server running the bundled SmolLM2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("llama_cpp")
for _module in ("fastapi", "sse_starlette", "starlette_context", "pydantic_settings", "uvicorn", "openai"):
    pytest.importorskip(_module, reason=f"the llama.cpp server test needs {_module}")

from ragkit.local_models import resolve_gguf  # noqa: E402
from ragkit.types import Message  # noqa: E402

pytestmark = pytest.mark.slow
ALIAS = "smollm2-local"
READY_TIMEOUT_S = 90.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import httpx

    port = _free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(resolve_gguf("smollm2")),
        "--model_alias",
        ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "1024",
        "--n_threads",
        "1",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server not ready after {READY_TIMEOUT_S:.0f}s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.25)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def generator(server):
    from ragkit.providers.openai import OpenAIGenerator

    return OpenAIGenerator.from_config(
        {"model": ALIAS, "base_url": server, "api_key_env": None, "context_window": 1024, "temperature": 0}
    )


async def test_models_endpoint_serves_the_alias(server):
    import httpx

    async with httpx.AsyncClient() as client:
        listed = (await client.get(f"{server}/models")).json()
    assert ALIAS in [m["id"] for m in listed["data"]]


async def test_real_chat_completion(generator):
    reply = await generator.generate(
        [Message("user", "What is the capital of France? Answer in one word.")], max_tokens=16
    )
    assert "Paris" in reply.text
    assert reply.usage.input_tokens > 10 and 0 < reply.usage.output_tokens <= 16
    assert reply.stop_reason in {"stop", "length"}
    await generator.aclose()


async def test_real_stream(generator):
    deltas = [d async for d in generator.stream([Message("user", "Say hello.")], max_tokens=16)]
    final = deltas[-1].reply
    assert final is not None
    pieces = [d.text for d in deltas[:-1] if d.text]
    assert len(pieces) >= 3  # really streamed, token by token
    assert "".join(d.text for d in deltas) == final.text and final.text.strip()
    assert final.stop_reason in {"stop", "length"}
    # llama-cpp-python's server (0.3.x) ignores stream_options.include_usage, so a stream has no usage; a server
    # that sends it must send real counts.
    if final.usage.output_tokens:
        assert 0 < final.usage.output_tokens <= 16 and final.usage.input_tokens > 5
    await generator.aclose()
