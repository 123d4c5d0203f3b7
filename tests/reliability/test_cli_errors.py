"""`ragkit ask`, `validate`, `plan`, `chat` and the top level: a user mistake or a failing provider is one
``error:`` line and a documented exit code, never a traceback, never an empty answer with exit 0.

The answers come from the real ``openai`` SDK talking to a scripted server on 127.0.0.1, over an index built by
``ragkit index`` with the real embedder and store.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from provider_fixtures import FakeHTTPServer, Response, json_response, openai_chunks, openai_completion, sse_response

from ragkit.cli import EXIT_ERROR, EXIT_INTERNAL, EXIT_USAGE, main

KEY_ENV = "RAGKIT_CLI_TEST_KEY"
SECRET = "sk-cli-test-0123456789abcdef"
CHAT = "/v1/chat/completions"
QUESTION = "What does LABO-288 cost?"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-errors")
    docs = root / "docs"
    docs.mkdir()
    (docs / "labo.md").write_text("# LABO-288\n\nA laboratory refrigerator with 288 litres; list price 2490 EUR.\n")
    config = root / "index.yaml"
    config.write_text(f"index_dir: {root / 'index'}\n")
    assert main(["index", str(docs), "--config", str(config)]) == 0
    return root / "index"


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    s = FakeHTTPServer()
    yield s
    s.close()


def pipeline(tmp_path: Path, index_dir: Path, url: str, deadline_s: float = 30) -> str:
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        f"index_dir: {index_dir}\n"
        "generators:\n"
        "  api:\n"
        "    type: openai\n"
        "    model: gpt-4o-mini\n"
        f"    api_key_env: {KEY_ENV}\n"
        f"    base_url: {url}/v1\n"
        "    timeout_s: 30\n"
        "default_generator: api\n"
        f"retry:\n  deadline_s: {deadline_s}\n  initial_backoff_s: 0\n  jitter: 0\n"
    )
    return str(path)


def hello(request) -> Response:
    if request.json.get("stream"):
        return sse_response(openai_chunks(("The list price ", "is 2490 EUR [1].")))
    return json_response(openai_completion("The list price is 2490 EUR [1]."))


def one_error_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


# ------------------------------------------------------------------------------------------ the command line


BAD_COMMAND_LINES = [
    ("filter-not-json", ["ask", QUESTION, "--filter", "{bad"], "--filter"),
    ("filter-not-object", ["ask", QUESTION, "--filter", "[1, 2]"], "--filter"),
    ("filter-bad-operator", ["ask", QUESTION, "--filter", '{"price": {"near": 1}}'], "--filter"),
    ("filter-bad-bound", ["ask", QUESTION, "--filter", '{"price": {"lt": "cheap"}}'], "--filter"),
    ("empty-question", ["ask", "   "], "question"),
    ("usage-in-missing-folder", ["ask", QUESTION, "--usage-jsonl", "/no/such/folder/usage.jsonl"], "usage-jsonl"),
    ("usage-is-a-folder", ["ask", QUESTION, "--usage-jsonl", "/"], "usage-jsonl"),
    ("validate-without-file", ["validate"], "file"),
    ("unknown-command", ["summon"], "invalid choice"),
]


@pytest.mark.parametrize(("case", "argv", "names"), BAD_COMMAND_LINES, ids=[c[0] for c in BAD_COMMAND_LINES])
def test_a_bad_command_line_exits_2_with_one_line(capsys, case, argv, names):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "Traceback" not in err and names in err


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == EXIT_USAGE
    assert "COMMAND" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ a failing provider


MALFORMED = [
    ("not-json", lambda: Response(200, b"{not json", {"content-type": "application/json"})),
    ("foo-bar", lambda: json_response({"foo": "bar"})),
    ("array", lambda: json_response([1, 2, 3])),
    ("html", lambda: Response(200, b"<html>proxy page</html>", {"content-type": "text/html"})),
    ("bad-stream-event", lambda: sse_response([(None, "{not json"), (None, "[DONE]")])),
    ("empty-stream", lambda: sse_response([])),
]


@pytest.mark.parametrize("mode", [[], ["--no-stream"], ["--json"]], ids=["streamed", "no-stream", "json"])
@pytest.mark.parametrize(("case", "reply"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_a_malformed_reply_is_one_error_line_and_exit_1(tmp_path, index_dir, server, capsys, case, reply, mode):
    server.default("POST", CHAT, lambda request: reply())
    code = main(["ask", QUESTION, "--config", pipeline(tmp_path, index_dir, server.url), *mode])
    out, err = capsys.readouterr()
    assert code == EXIT_ERROR, (out, err)
    line = one_error_line(err)
    assert line.startswith("error: openai:") or "ended without" in line, line
    assert "2490" not in out and '"answer"' not in out
    if not (case == "empty-stream" and not mode):  # a stream cut short is retried: it may be a dropped connection
        assert len(server.requests_to(CHAT)) == 1, "a malformed reply is not retried"


def test_the_deadline_ends_ask_while_the_server_is_silent(tmp_path, index_dir, server, capsys):
    arrived: list[float] = []

    def silent(request) -> Response:
        arrived.append(time.monotonic())
        return json_response(openai_completion(), delay=20)

    server.default("POST", CHAT, silent)
    code = main(["ask", QUESTION, "--config", pipeline(tmp_path, index_dir, server.url, deadline_s=1)])
    ended = time.monotonic()
    assert code == EXIT_ERROR
    assert "deadline" in one_error_line(capsys.readouterr().err)
    assert len(arrived) == 1 and ended - arrived[0] < 5, "the deadline cuts the request in flight"


def test_an_unknown_generator_is_one_line(tmp_path, index_dir, server, capsys):
    server.default("POST", CHAT, hello)
    assert main(["ask", QUESTION, "--config", pipeline(tmp_path, index_dir, server.url), "--generator", "gpt9"]) == 1
    assert "gpt9" in one_error_line(capsys.readouterr().err)


def test_a_good_reply_still_answers_with_exit_0(tmp_path, index_dir, server, capsys):
    server.default("POST", CHAT, hello)
    assert main(["ask", QUESTION, "--config", pipeline(tmp_path, index_dir, server.url)]) == 0
    out = capsys.readouterr().out
    assert "2490 EUR" in out and "Sources:" in out


def test_chat_reports_a_failed_question_and_goes_on(tmp_path, index_dir, server, capsys, monkeypatch):
    server.script("POST", CHAT, sse_response([(None, "{not json")]))
    server.default("POST", CHAT, hello)
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{QUESTION}\n{QUESTION}\n/quit\n"))
    code = main(["chat", "--config", pipeline(tmp_path, index_dir, server.url)])
    out, err = capsys.readouterr()
    assert "openai" in one_error_line(err)
    assert out.count("2490 EUR") == 1, "the second question was answered"
    assert code == EXIT_ERROR, "one question failed"


# ------------------------------------------------------------------------------------------ config files


@pytest.mark.parametrize("command", ["plan", "ask", "chat"])
def test_a_bad_pipeline_file_is_one_error_line(tmp_path, capsys, command, monkeypatch):
    bad = tmp_path / "bad.yaml"
    bad.write_text("retrieval:\n  top_k: 3\n  top_k: 4\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    monkeypatch.chdir(tmp_path)
    argv = {"plan": ["plan", str(bad)], "ask": ["ask", QUESTION, "--config", str(bad)]}.get(
        command, ["chat", "--config", str(bad)]
    )
    assert main(argv) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "Traceback" not in err and "line 3" in err and "duplicate key" in err
    assert not (tmp_path / ".ragkit").exists()


@pytest.mark.parametrize("target", ["missing.yaml", "."], ids=["missing", "a-directory"])
def test_validate_on_an_unreadable_file_is_one_line(tmp_path, capsys, target, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["validate", target]) == EXIT_ERROR
    one_error_line(capsys.readouterr().err)


def test_usage_on_a_directory_is_one_os_error_line(tmp_path, capsys):
    assert main(["usage", str(tmp_path)]) == EXIT_ERROR
    assert str(tmp_path) in one_error_line(capsys.readouterr().err)


# ------------------------------------------------------------------------------------------ bugs


def test_an_internal_error_is_one_line_and_exit_70(capsys, monkeypatch):
    import ragkit.commands.answer as answer

    def broken(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(answer, "run_schema", broken)
    assert main(["schema"]) == EXIT_INTERNAL
    line = one_error_line(capsys.readouterr().err)
    assert "internal error" in line and "ZeroDivisionError" in line and "-vv" in line


# ------------------------------------------------------------------------------------------ a real process


def test_the_installed_command_prints_no_traceback(tmp_path, index_dir, server):
    server.default("POST", CHAT, lambda request: Response(200, b"{not json", {"content-type": "application/json"}))
    config = pipeline(tmp_path, index_dir, server.url)
    env = {"PATH": "/usr/bin:/bin", KEY_ENV: SECRET, "HOME": str(tmp_path)}
    runs = {
        "filter": [QUESTION, "--filter", "{bad"],
        "streamed": [QUESTION],
    }
    for name, args in runs.items():
        done = subprocess.run(
            [sys.executable, "-m", "ragkit.cli", "ask", *args, "--config", config],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert done.returncode == (EXIT_USAGE if name == "filter" else EXIT_ERROR), (name, done.stderr)
        assert "Traceback" not in done.stderr and "error:" in done.stderr, (name, done.stderr)
        assert SECRET not in done.stdout + done.stderr
        if name != "filter":
            assert json.dumps("2490") not in done.stdout
