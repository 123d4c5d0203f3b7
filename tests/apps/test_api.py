"""The OpenAI-compatible API against the real ``openai`` SDK and raw HTTP, on a real uvicorn server on 127.0.0.1.

The pipelines here use the real Qdrant edge engine with scripted models, so the wire format, errors, auth, limits
and the queue are tested quickly; ``test_api_serve.py`` runs ``ragkit serve --api`` on the real models."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")
import httpx  # noqa: E402
from live_server import serving  # noqa: E402

from ragkit.answer.conversation import REWRITE_SYSTEM_PROMPT  # noqa: E402
from ragkit.apps.api import ApiSettings, ServedModel, create_api  # noqa: E402
from ragkit.apps.api_guard import token_from_env  # noqa: E402
from ragkit.config import parse_pipeline  # noqa: E402
from ragkit.errors import ConfigError  # noqa: E402
from ragkit.pipeline import RAG  # noqa: E402
from ragkit.testing import FakeEmbedder  # noqa: E402
from ragkit.types import Delta, Document, Reply, Usage  # noqa: E402

DOCS = [
    Document(
        "ult", "POLAR-ULT-500 is an ultra-low freezer that reaches -86 °C. Price: 9,800 EUR.", {"title": "ULT-500"}
    ),
    Document("labo", "LABO-288 is a laboratory refrigerator with 288 litres. Price: 2,490 EUR.", {"title": "LABO-288"}),
    Document("vax", "KN-VAX-98 stores vaccines and has an SMS alarm. Price: 1,150 EUR.", {"title": "KN-VAX-98"}),
]


class SourceEcho:
    """A generator that answers with the first source's label and cites it; rewrites follow-ups by naming the
    product of the last answer. Optionally slow, to fill the queue."""

    id = "echo"
    context_window = 4096

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.requests: list[list] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def generate(self, messages, *, max_tokens=None, tools=None, json_schema=None):
        self.requests.append(list(messages))
        await asyncio.sleep(self.delay_s)
        last = messages[-1].content
        if messages[0].content == REWRITE_SYSTEM_PROMPT:
            text = "How much does the POLAR-ULT-500 cost?" if "POLAR-ULT-500" in last else "What?"
        else:
            first = last.split("[1] (", 1)[1].split(")", 1)[0] if "[1] (" in last else "nothing"
            text = f"The answer is in {first} [1]."
        return Reply(text, model="echo", usage=Usage(len(last.split()), len(text.split())))

    async def stream(self, messages, *, max_tokens=None, tools=None):
        reply = await self.generate(messages)
        for word in reply.text.split(" "):
            yield Delta(text=word + " ")
        yield Delta(reply=reply)


def running(app):
    return serving(app, lifespan="auto")


def make_rag(tmp, name, gen):
    config = parse_pipeline({"index_dir": str(tmp / name), "generators": {"local": {"type": "llamacpp"}}})
    rag = RAG(config, generators={"local": gen}, embedder=FakeEmbedder(32))
    rag.index(DOCS)
    return rag


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    gen = SourceEcho()
    docs = make_rag(tmp, "docs", gen)
    slow = make_rag(tmp, "slow", SourceEcho(delay_s=1.5))
    settings = ApiSettings(token="s3cret-token", max_body_bytes=64 * 1024, chat_active=1, chat_waiting=1)
    models = [ServedModel("docs", docs, docs, "Docs"), ServedModel("slow", slow, slow, "Slow")]
    with running(create_api(models, settings)) as url:
        yield url, gen


def client(url, key="s3cret-token"):
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=30)


def headers(token="s3cret-token"):
    return {"Authorization": f"Bearer {token}"}


def assert_error_shape(resp, status, code=None, param=None):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["message"] and "Traceback" not in resp.text
    if code is not None:
        assert body["error"]["code"] == code, body
    if param is not None:
        assert body["error"]["param"] == param, body
    return body["error"]


def test_sdk_non_streamed_answer_carries_sources_in_the_extension(server):
    url, _ = server
    completion = client(url).chat.completions.create(
        model="docs", messages=[{"role": "user", "content": "Which freezer reaches -86 °C?"}]
    )
    assert completion.object == "chat.completion" and completion.model == "docs"
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and choice.finish_reason == "stop"
    extra = completion.model_extra["ragkit"]
    first = extra["sources"][0]
    assert choice.message.content == f"The answer is in {first['title']} [1]."
    assert (
        first["n"] == 1 and first["doc_id"] in {"ult", "labo", "vax"} and first["metadata"]["title"] == first["title"]
    )
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens == 6
    assert extra["query"]["method"] == "none" and extra["request_id"]


def test_sdk_streamed_answer_ends_with_sources_and_usage(server):
    url, _ = server
    stream = client(url).chat.completions.create(
        model="docs",
        messages=[{"role": "user", "content": "Which fridge has an SMS alarm?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason][-1]
    sources = final.model_extra["ragkit"]["sources"]
    assert final.choices[0].finish_reason == "stop" and sources
    assert text.strip() == f"The answer is in {sources[0]['title']} [1]."
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    assert len({c.id for c in chunks}) == 1


def test_raw_stream_is_openai_sse_ending_with_done(server):
    url, _ = server
    body = {"model": "docs", "stream": True, "messages": [{"role": "user", "content": "LABO-288 price?"}]}
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, headers=headers(), timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)


def test_sdk_multi_turn_follow_up_is_rewritten_and_history_reaches_the_model(server):
    url, gen = server
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Which freezer reaches -86 °C?"},
        {"role": "assistant", "content": "The POLAR-ULT-500 reaches -86 °C [1]."},
        {"role": "user", "content": [{"type": "text", "text": "How much does it cost?"}]},
    ]
    completion = client(url).chat.completions.create(model="docs", messages=messages)
    extra = completion.model_extra["ragkit"]
    assert extra["query"] == {
        "original": "How much does it cost?",
        "query": "How much does the POLAR-ULT-500 cost?",
        "method": "model",
        "reason": "refers back ('it')",
    }
    assert extra["sources"][0]["doc_id"] == "ult"
    answered = gen.requests[-1]
    assert [m.role for m in answered] == ["system", "user", "assistant", "user"]
    assert answered[0].content != "You are a helpful assistant."  # ragkit's grounded prompt, not the client's
    assert answered[-1].content.endswith("Question: How much does it cost?")


def test_models_search_and_health(server):
    url, _ = server
    assert [m.id for m in client(url).models.list()] == ["docs", "slow"]
    assert client(url).models.retrieve("slow").id == "slow"
    r = httpx.post(url + "/v1/search", json={"query": "SMS alarm vaccines", "top_k": 2}, headers=headers())
    assert r.status_code == 200
    data = r.json()["data"]
    assert len(data) == 2 and data[0]["rank"] == 1 and data[0]["doc_id"] == "vax"
    assert data[0]["score"] >= data[1]["score"] and data[0]["metadata"]["title"] == "KN-VAX-98"
    flt = {"query": "price", "top_k": 5, "filter": {"title": "LABO-288"}, "model": "docs"}
    filtered = httpx.post(url + "/v1/search", json=flt, headers=headers()).json()["data"]
    assert [h["doc_id"] for h in filtered] == ["labo"]
    assert httpx.get(url + "/healthz").json() == {"status": "ok"}  # no token needed


@pytest.mark.parametrize(
    "content, status, code, param",
    [
        (b"{not json", 400, "invalid_json", None),
        (b"[1, 2]", 400, "invalid_body", None),
        (b'{"model": "docs"}', 400, "invalid_value", "messages"),
        (b'{"model": "nope", "messages": [{"role": "user", "content": "hi"}]}', 404, "model_not_found", "model"),
        (b'{"model": "docs", "n": 2, "messages": [{"role": "user", "content": "hi"}]}', 400, "invalid_value", "n"),
        (b'{"model": "docs", "messages": [{"role": "assistant", "content": "hi"}]}', 400, None, "messages[0].role"),
        (b'{"model": "docs", "messages": [{"role": "user", "content": "  "}]}', 400, None, "messages[0].content"),
        (
            b'{"model": "docs", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}',
            400,
            "unsupported_content",
            "messages[0].content[0]",
        ),
        (
            b'{"model": "docs", "ragkit": {"filter": {"price": {"gte": "x"}}}, '
            b'"messages": [{"role": "user", "content": "hi"}]}',
            400,
            "invalid_filter",
            "ragkit.filter",
        ),
    ],
)
def test_bad_requests_get_4xx_in_openai_error_shape(server, content, status, code, param):
    url, _ = server
    r = httpx.post(url + "/v1/chat/completions", content=content, headers=headers(), timeout=30)
    assert_error_shape(r, status, code, param)


def test_oversized_bodies_are_refused_with_or_without_a_length(server):
    url, _ = server
    big = json.dumps({"model": "docs", "messages": [{"role": "user", "content": "x" * 100_000}]}).encode()
    assert_error_shape(httpx.post(url + "/v1/chat/completions", content=big, headers=headers()), 413)

    def chunked():
        for _ in range(100):
            yield b" " * 1024

    r = httpx.post(url + "/v1/chat/completions", content=chunked(), headers=headers())
    assert_error_shape(r, 413, "request_too_large")
    r = httpx.post(url + "/v1/search", json={"query": "q" * 5000}, headers=headers())
    assert_error_shape(r, 400, "invalid_value", "query")


def test_missing_or_wrong_token_is_401_and_the_sdk_raises_authentication_error(server):
    url, _ = server
    r = httpx.get(url + "/v1/models")
    assert_error_shape(r, 401, "missing_api_key")
    assert r.headers["www-authenticate"] == "Bearer"
    assert_error_shape(httpx.get(url + "/v1/models", headers=headers("wrong")), 401, "invalid_api_key")
    assert_error_shape(httpx.get(url + "/v1/models", headers={"Authorization": "Basic abc"}), 401)
    with pytest.raises(openai.AuthenticationError) as e:
        client(url, key="wrong").chat.completions.create(model="docs", messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 401 and "s3cret" not in str(e.value)
    with pytest.raises(openai.NotFoundError) as e:
        client(url).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert e.value.body["code"] == "model_not_found"


def test_unknown_paths_and_methods_use_the_error_shape(server):
    url, _ = server
    assert_error_shape(httpx.get(url + "/v1/nothing", headers=headers()), 404, "unknown_url")
    assert_error_shape(httpx.get(url + "/v1/chat/completions", headers=headers()), 405)


def test_a_full_queue_answers_429_with_retry_after_and_the_server_stays_up(server):
    url, _ = server
    body = {"model": "slow", "messages": [{"role": "user", "content": "Which freezer?"}]}

    async def burst():
        async with httpx.AsyncClient(timeout=30, headers=headers()) as http:
            return await asyncio.gather(*(http.post(url + "/v1/chat/completions", json=body) for _ in range(4)))

    responses = asyncio.run(burst())
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 429, 429], statuses  # 1 running + 1 waiting
    refused = next(r for r in responses if r.status_code == 429)
    assert_error_shape(refused, 429, "rate_limit_exceeded")
    assert int(refused.headers["retry-after"]) >= 1
    # The queue drains and the server still answers.
    ok = client(url).chat.completions.create(model="slow", messages=body["messages"])
    assert ok.choices[0].message.content.startswith("The answer is in")
    # A streamed request is refused before its 200 goes out, so the SDK sees a 429 too.
    with ThreadPoolExecutor(2) as pool:
        busy = [pool.submit(httpx.post, url + "/v1/chat/completions", json=body, headers=headers(), timeout=30)]
        time.sleep(0.3)
        busy.append(pool.submit(httpx.post, url + "/v1/chat/completions", json=body, headers=headers(), timeout=30))
        time.sleep(0.3)
        with pytest.raises(openai.RateLimitError):
            list(client(url).chat.completions.create(model="slow", messages=body["messages"], stream=True))
        assert [f.result().status_code for f in busy] == [200, 200]
    assert httpx.get(url + "/healthz").status_code == 200


def test_binding_beyond_loopback_needs_a_token(monkeypatch):
    monkeypatch.delenv("RAGKIT_TEST_API_TOKEN", raising=False)
    assert token_from_env("RAGKIT_TEST_API_TOKEN", "127.0.0.1") is None
    assert token_from_env("RAGKIT_TEST_API_TOKEN", "::1") is None
    with pytest.raises(ConfigError, match="RAGKIT_TEST_API_TOKEN"):
        token_from_env("RAGKIT_TEST_API_TOKEN", "0.0.0.0")
    monkeypatch.setenv("RAGKIT_TEST_API_TOKEN", "abc")
    assert token_from_env("RAGKIT_TEST_API_TOKEN", "0.0.0.0") == "abc"


def test_serve_api_refuses_a_public_bind_without_a_token(monkeypatch, capsys):
    from ragkit.cli import main

    monkeypatch.delenv("RAGKIT_TEST_API_TOKEN", raising=False)
    code = main(["serve", "--api", "--host", "0.0.0.0", "--token-env", "RAGKIT_TEST_API_TOKEN"])
    err = capsys.readouterr().err
    assert code == 1 and "RAGKIT_TEST_API_TOKEN" in err and "Traceback" not in err


def test_one_server_serves_a_pipeline_and_the_catalog_bot_by_model_name(tmp_path):
    from paths import EXAMPLES

    from ragkit.pipeline import build_app

    example = EXAMPLES / "product_qa"
    config = parse_pipeline(
        {
            "index_dir": str(tmp_path / "bot"),
            "catalog": {"path": str(example / "catalog.json"), "docs_dir": str(example / "docs")},
            "generators": {"local": {"type": "llamacpp"}},
        }
    )
    bot = build_app(config, embedder=FakeEmbedder(64), generators={"local": SourceEcho()})
    docs = make_rag(tmp_path, "docs", SourceEcho())
    models = [ServedModel("docs", docs, docs), ServedModel("bot", bot.answerer, bot.rag)]
    with running(create_api(models)) as url:
        sdk = client(url, key="unused")
        question = [{"role": "user", "content": "What does LABO-288 cost?"}]
        answer = sdk.chat.completions.create(model="bot", messages=question)
        extra = answer.model_extra["ragkit"]
        assert answer.choices[0].message.content and extra["sources"][0]["doc_id"] == "LABO-288"
        assert "intent" in extra  # the bot's own metadata passes through
        streamed = list(sdk.chat.completions.create(model="bot", messages=question, stream=True))
        assert streamed[-1].model_extra["ragkit"]["sources"][0]["doc_id"] == "LABO-288"
        plain = sdk.chat.completions.create(model="docs", messages=question)
        assert plain.model_extra["ragkit"]["sources"][0]["doc_id"] == "labo"
        r = httpx.post(
            url + "/v1/chat/completions",
            json={**{"model": "bot", "messages": question}, "ragkit": {"filter": {"title": "x"}}},
        )
        if models[1].takes_filter():
            assert r.status_code == 200
        else:
            assert_error_shape(r, 400, param="ragkit.filter")
