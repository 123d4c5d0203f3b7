"""`ragkit serve --api` as users run it: the CLI in its own process on 127.0.0.1, the real models (MiniLM, Qdrant
edge, SmolLM2 on llama.cpp), and the official ``openai`` SDK as the client, streamed and not, over two turns."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")
import httpx  # noqa: E402

RAGKIT = [sys.executable, "-m", "ragkit.cli"]
PRODUCTS = {
    "polar-ult-500.md": "# POLAR-ULT-500\n\nAn ultra-low freezer that reaches -86 °C and holds 500 litres. "
    "Price: 9,800 EUR.",
    "labo-288.md": "# LABO-288\n\nA laboratory refrigerator for 2 to 8 °C with 288 litres. Price: 2,490 EUR.",
    "kn-vax-98.md": "# KN-VAX-98\n\nA vaccine refrigerator with an SMS alarm and 98 litres. Price: 1,150 EUR.",
    "cryo-200.md": "# CRYO-200\n\nA cryogenic tank for liquid nitrogen, 200 litres. Price: 6,400 EUR.",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    docs = tmp / "docs"
    docs.mkdir()
    for name, text in PRODUCTS.items():
        (docs / name).write_text(text, encoding="utf-8")
    config = tmp / "products.yaml"
    config.write_text(
        f"index_dir: {tmp / 'idx'}\n"
        "generators:\n  local: {type: llamacpp, model: smollm2, max_output_tokens: 40}\n"
        "default_generator: local\nbudget: {reserved_output_tokens: 40}\nretrieval: {top_k: 2}\n",
        encoding="utf-8",
    )
    env = {**os.environ, "RAGKIT_API_TOKEN": "test-token"}
    done = subprocess.run([*RAGKIT, "index", str(docs), "--config", str(config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    port = free_port()
    log = (tmp / "server.log").open("w")
    server = subprocess.Popen(
        [*RAGKIT, "serve", "--api", "--model", f"products={config}", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail("ragkit serve --api did not start: " + Path(log.name).read_text())
        time.sleep(0.2)
    yield openai.OpenAI(base_url=url + "/v1", api_key="test-token", max_retries=0, timeout=120), url
    server.terminate()
    try:
        server.wait(timeout=20)
    finally:
        log.close()
    output = Path(log.name).read_text()
    assert "Traceback" not in output, output


@pytest.mark.slow
def test_openai_sdk_gets_a_streamed_and_a_plain_answer_with_sources(api):
    client, _ = api
    question = [{"role": "user", "content": "Which freezer reaches -86 °C?"}]
    plain = client.chat.completions.create(model="products", messages=question)
    assert plain.choices[0].message.content.strip()
    sources = plain.model_extra["ragkit"]["sources"]
    assert sources[0]["doc_id"].endswith("polar-ult-500.md") and sources[0]["title"] == "POLAR-ULT-500"
    assert plain.usage.prompt_tokens > 0 and plain.usage.completion_tokens > 0

    chunks = list(client.chat.completions.create(model="products", messages=question, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    final = chunks[-1]
    assert text.strip() and final.choices[0].finish_reason in ("stop", "length")
    assert final.model_extra["ragkit"]["sources"][0]["doc_id"] == sources[0]["doc_id"]


@pytest.mark.slow
def test_a_follow_up_turn_retrieves_the_product_of_the_first(api):
    client, _ = api
    first = [{"role": "user", "content": "Which freezer reaches -86 °C?"}]
    answer = client.chat.completions.create(model="products", messages=first).choices[0].message.content
    follow = [*first, {"role": "assistant", "content": answer}, {"role": "user", "content": "How much does it cost?"}]
    second = client.chat.completions.create(model="products", messages=follow)
    extra = second.model_extra["ragkit"]
    assert extra["query"]["original"] == "How much does it cost?" and extra["query"]["method"] in ("model", "context")
    assert extra["sources"][0]["doc_id"].endswith("polar-ult-500.md"), extra["query"]


@pytest.mark.slow
def test_bad_input_leaves_the_server_up(api):
    client, url = api
    auth = {"Authorization": "Bearer test-token"}
    assert httpx.post(url + "/v1/chat/completions", content=b"{oops", headers=auth).status_code == 400
    assert httpx.post(url + "/v1/chat/completions", content=b"x" * (2 << 20), headers=auth).status_code == 413
    assert httpx.get(url + "/v1/models").status_code == 401
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    assert [m.id for m in client.models.list()] == ["products"]
    hits = httpx.post(url + "/v1/search", json={"query": "liquid nitrogen", "top_k": 1}, headers=auth).json()["data"]
    assert hits[0]["doc_id"].endswith("cryo-200.md")
