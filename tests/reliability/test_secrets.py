"""API keys: a key pasted where the NAME of its environment variable belongs is refused by ``validate`` without
being echoed, and no command, error, log line, repr or config dump ever shows a key — even one a server echoes.
"""

from __future__ import annotations

import logging
import textwrap

import pytest
from provider_fixtures import FakeHTTPServer, built, close_built, json_response

from ragkit.cli import main
from ragkit.component import looks_like_secret, secret_from_env
from ragkit.config import ConfigValidationError, load_pipeline, parse_pipeline
from ragkit.errors import ConfigError, ProviderError
from ragkit.types import Message

# Shapes of real keys (made up): dashed ones, and ones made only of letters, digits and underscores.
PASTED = [
    "sk-proj-Zq81xW3vTn0pLm4s5KjH7gF2dS9aQeR1tY6uI0oP",
    "sk-ant-api03-Xy7Qm2Lp9Rt4Vn8Kw3Jh6Gf1Ds5Aa0Zx-AbCd",
    "AIzaSyD3f9_k2LmN8pQr7StUvWx1YzAb4CdEfGh",
    "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY",
    "ghp_Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78",
]
BLOCKS = {
    "openai": ("generators", "type: openai\n    model: gpt-4o-mini"),
    "anthropic": ("generators", "type: anthropic\n    model: claude-haiku-4-5"),
    "gemini": ("generators", "type: gemini\n    model: gemini-2.5-flash"),
    "ollama": ("generators", "type: ollama\n    model: llama3.2"),
    "openai-embedder": ("embedder", "type: openai"),
    "gemini-embedder": ("embedder", "type: gemini"),
    "ollama-embedder": ("embedder", "type: ollama\n  model: nomic-embed-text"),
}


def pipeline_with(kind: str, key: str) -> str:
    where, block = BLOCKS[kind]
    if where == "generators":
        return f"generators:\n  api:\n    {block}\n    api_key_env: {key}\ndefault_generator: api\n"
    return f"embedder:\n  {block}\n  api_key_env: {key}\n"


@pytest.mark.parametrize("key", PASTED, ids=["openai", "anthropic", "gemini", "alnum", "github"])
@pytest.mark.parametrize("kind", list(BLOCKS))
def test_validate_refuses_a_pasted_key_and_never_echoes_it(tmp_path, capsys, kind, key):
    path = tmp_path / "pipeline.yaml"
    path.write_text(pipeline_with(kind, key))
    assert main(["validate", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "api_key_env" in out and "NAME of an environment variable" in out
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "api_key_env" in text)
    assert f":{line}:" in out
    assert key not in out + err and key[:12] not in out + err


@pytest.mark.parametrize("key", PASTED[:3], ids=["openai", "anthropic", "gemini"])
def test_ask_with_a_pasted_key_never_prints_it(tmp_path, capsys, key, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "pipeline.yaml"
    path.write_text(pipeline_with("openai", key))
    for argv in (["ask", "What does it cost?", "--config", str(path)], ["-vv", "plan", str(path)]):
        assert main(argv) == 1
        out, err = capsys.readouterr()
        assert "Traceback" not in err and key not in out + err and key[:12] not in out + err


@pytest.mark.parametrize(
    "name", ["OPENAI_API_KEY", "MY_Service_Key_2", "openai_key", "HF_TOKEN", "RAGKIT_TEST_KEY_1", "Key2"]
)
def test_ordinary_variable_names_are_accepted(name):
    assert not looks_like_secret(name)
    generators = {"api": {"type": "openai", "model": "gpt-4o", "api_key_env": name}}
    parse_pipeline({"generators": generators, "default_generator": "api"})


def test_the_library_refuses_a_pasted_key_too(monkeypatch):
    from ragkit.providers.gemini import GeminiGenerator
    from ragkit.providers.openai import OpenAIGenerator

    for build in (
        lambda: OpenAIGenerator({"model": "gpt-4o", "api_key_env": PASTED[3]}),
        lambda: GeminiGenerator.from_config({"model": "gemini-2.5-flash", "api_key_env": PASTED[2]}),
    ):
        with pytest.raises(ConfigError) as caught:
            build()
        # Not chained to pydantic's error either: that one quotes the input.
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
        assert PASTED[2] not in str(caught.value) and PASTED[3] not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        secret_from_env(PASTED[3])
    assert PASTED[3] not in str(caught.value)


def test_an_unset_variable_is_named_unless_the_name_looks_like_a_key(monkeypatch):
    monkeypatch.delenv("RAGKIT_UNSET_KEY", raising=False)
    with pytest.raises(ConfigError, match="RAGKIT_UNSET_KEY is not set"):
        secret_from_env("RAGKIT_UNSET_KEY")


# ------------------------------------------------------------------------------------------ keys in use

SECRET = "sk-live-reliability-Qm2Lp9Rt4Vn8Kw3J"
KEY_ENV = "RAGKIT_SECRETS_TEST_KEY"


@pytest.fixture
async def echoing(monkeypatch):
    """A server that puts the key it was sent into every error and every body."""
    monkeypatch.setenv(KEY_ENV, SECRET)
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    server = FakeHTTPServer()

    def echo(request):
        sent = request.headers.get("authorization") or request.headers.get("x-api-key") or ""
        sent = sent or request.headers.get("x-goog-api-key", "")
        return json_response({"error": {"message": f"key {sent} rejected", "code": 401, "status": "x"}}, status=401)

    for path in (
        "/v1/chat/completions",
        "/v1/messages",
        "/v1/models/gemini-2.5-flash:generateContent",
        "/v1beta/models/gemini-2.5-flash:generateContent",
        "/api/chat",
    ):
        server.default("POST", path, echo)
    yield server
    server.close()
    await close_built()


def generators(url: str) -> list:
    from ragkit.providers.anthropic import AnthropicGenerator
    from ragkit.providers.gemini import GeminiGenerator
    from ragkit.providers.ollama import OllamaGenerator
    from ragkit.providers.openai import OpenAIGenerator
    from ragkit.retry import RetryConfig, RetryPolicy

    once = RetryPolicy(RetryConfig(max_attempts=1))
    return [
        OpenAIGenerator({"model": "gpt-4o-mini", "api_key_env": KEY_ENV, "base_url": url + "/v1"}, retry=once),
        AnthropicGenerator({"model": "claude-haiku-4-5", "api_key_env": KEY_ENV, "base_url": url}, retry=once),
        GeminiGenerator.from_config({"model": "gemini-2.5-flash", "base_url": url}, retry=once),
        OllamaGenerator.from_config({"model": "llama3.2", "host": url, "api_key_env": KEY_ENV}, retry=once),
    ]


async def test_an_echoed_key_is_scrubbed_from_errors_logs_and_reprs(echoing, caplog):
    caplog.set_level(logging.DEBUG)
    for gen in generators(echoing.url):
        built(gen)
        with pytest.raises(ProviderError) as caught:
            await gen.generate([Message("user", "hi")])
        error = caught.value
        assert SECRET not in str(error), (gen, str(error))
        assert error.__cause__ is None or SECRET not in str(error.__cause__), "no chained error carries the key"
        assert SECRET not in repr(gen) and SECRET not in str(gen.config) and SECRET not in gen.config.model_dump_json()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET not in logged


def test_ask_never_prints_an_echoed_key(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    server = FakeHTTPServer()
    try:
        # The body of a 200 that is not JSON repeats the key: the error quotes the body, scrubbed.
        server.default(
            "POST",
            "/v1/chat/completions",
            lambda request: json_response(f"{request.headers.get('authorization')} is not allowed here"),
        )
        path = tmp_path / "pipeline.yaml"
        path.write_text(
            textwrap.dedent(f"""\
            index_dir: {tmp_path / "index"}
            generators:
              api:
                type: openai
                model: gpt-4o-mini
                api_key_env: {KEY_ENV}
                base_url: {server.url}/v1
            default_generator: api
            """)
        )
        (tmp_path / "docs").mkdir()
        (tmp_path / "docs" / "a.md").write_text("LABO-288 costs 2490 EUR.\n")
        assert main(["index", str(tmp_path / "docs"), "--config", str(path)]) == 0
        capsys.readouterr()
        for extra in ([], ["--no-stream"], ["--json"]):
            assert main(["-vv", "ask", "What does LABO-288 cost?", "--config", str(path), *extra]) == 1
            out, err = capsys.readouterr()
            assert "error: openai" in err and SECRET not in out + err
            assert main(["plan", str(path)]) == 0
            assert SECRET not in capsys.readouterr().out
    finally:
        server.close()


def test_a_config_dump_holds_names_never_values(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    config = parse_pipeline(
        {
            "generators": {"api": {"type": "openai", "model": "gpt-4o", "api_key_env": KEY_ENV}},
            "default_generator": "api",
        }
    )
    dumped = config.dump_yaml()
    assert KEY_ENV in dumped and SECRET not in dumped


def test_validation_error_text_never_holds_the_key(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(pipeline_with("anthropic", PASTED[1]))
    with pytest.raises(ConfigValidationError) as caught:
        load_pipeline(path)
    assert PASTED[1] not in str(caught.value) and PASTED[1] not in repr(caught.value.problems)
