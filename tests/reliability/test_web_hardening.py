"""The chat web app behind uvicorn on 127.0.0.1: security headers on every response, an optional bearer token
(required beyond loopback), a bounded queue of model requests (429 with Retry-After when full), and `ragkit serve`
refusing to listen beyond loopback without a token and warning when it does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import shutil
import threading
import time
from typing import Any

import pytest

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from live_server import LiveServer  # noqa: E402

from ragkit.apps.api_guard import is_loopback  # noqa: E402
from ragkit.apps.web import PAGE, create_app  # noqa: E402
from ragkit.apps.web_guard import SESSION_COOKIE, Gate  # noqa: E402
from ragkit.cli import main  # noqa: E402
from ragkit.component import secret_from_env  # noqa: E402
from ragkit.errors import ConfigError, Unavailable  # noqa: E402
from ragkit.types import Delta, Reply  # noqa: E402

TOKEN = "web-token-Zq81xW3vTn0pLm4s5KjH"


class HeldAnswerer:
    """Answers once ``release`` is set; counts the answers it has started."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = 0

    async def astream(self, question: str, **_: Any):
        self.started += 1
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        yield Delta(text=f"answer to {question}")
        yield Delta(reply=Reply(text=f"answer to {question}", model="held"))


class FailingAnswerer:
    async def astream(self, question: str, **_: Any):
        raise Unavailable(f"upstream said: key {secret_from_env('RAGKIT_WEB_UPSTREAM_KEY').get_secret_value()} bad")
        yield  # pragma: no cover


@pytest.fixture
def serve():
    started: list[LiveServer] = []

    def start(app: Any) -> str:
        started.append(LiveServer(app))
        return started[-1].url

    yield start
    for s in started:
        s.close()


# ------------------------------------------------------------------------------------------ headers


def test_every_response_carries_the_security_headers(serve):
    held = HeldAnswerer()
    held.release.set()
    url = serve(create_app(held))
    for path, status in [("/", 200), ("/api/health", 200), ("/api/ask?q=hi", 200), ("/api/ask", 400), ("/x", 404)]:
        r = httpx.get(url + path, timeout=10)
        assert r.status_code == status, path
        assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff", path
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp and "connect-src 'self'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


def test_the_policy_allows_exactly_the_page_inline_script_and_style(serve):
    url = serve(create_app(HeldAnswerer(), title="T", note="N"))
    r = httpx.get(url + "/", timeout=10)
    csp = r.headers["content-security-policy"]
    for tag, directive in (("script", "script-src"), ("style", "style-src")):
        [body] = re.findall(rf"<{tag}>(.*?)</{tag}>", r.text, flags=re.DOTALL)
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert re.search(rf"{directive} 'sha256-{re.escape(digest)}';", csp), (tag, csp)
    assert "<script>" in PAGE


# ------------------------------------------------------------------------------------------ token


def test_without_the_token_nothing_but_health_answers(serve):
    held = HeldAnswerer()
    held.release.set()
    url = serve(create_app(held, token=TOKEN))
    assert httpx.get(url + "/api/health", timeout=10).status_code == 200
    for path in ("/", "/api/ask?q=hi", "/?token=wrong-token-wrong-token"):
        r = httpx.get(url + path, timeout=10)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), path
    wrong = {"Authorization": "Bearer " + TOKEN[:-1] + "x"}
    assert httpx.get(url + "/api/ask?q=hi", headers=wrong, timeout=10).status_code == 401
    assert held.started == 0


def test_a_bearer_token_opens_the_api(serve):
    held = HeldAnswerer()
    held.release.set()
    url = serve(create_app(held, token=TOKEN))
    r = httpx.get(url + "/api/ask", params={"q": "hi"}, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert r.status_code == 200 and "answer to hi" in r.text


def test_a_browser_trades_the_token_for_a_session_cookie(serve):
    held = HeldAnswerer()
    held.release.set()
    url = serve(create_app(held, token=TOKEN))
    with httpx.Client(base_url=url, timeout=10) as browser:
        r = browser.get("/", params={"token": TOKEN})
        assert r.status_code == 303 and r.headers["location"] == "/", "the token leaves the address bar"
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(SESSION_COOKIE + "=") and TOKEN not in cookie
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert browser.get("/").status_code == 200
        assert "answer to hi" in browser.get("/api/ask", params={"q": "hi"}).text
    forged = {SESSION_COOKIE: hashlib.sha256(TOKEN.encode()).hexdigest()}
    assert httpx.get(url + "/api/ask?q=hi", cookies=forged, timeout=10).status_code == 401


def test_a_short_token_is_refused():
    with pytest.raises(ConfigError, match="shorter than 16"):
        create_app(HeldAnswerer(), token="secret")


# ------------------------------------------------------------------------------------------ bounded queue


def test_a_full_queue_answers_429_with_retry_after_then_recovers(serve):
    held = HeldAnswerer()
    url = serve(create_app(held, max_concurrent=1, max_queued=1))
    with httpx.Client(base_url=url, timeout=20) as client:
        first = client.stream("GET", "/api/ask", params={"q": "one"})
        second = client.stream("GET", "/api/ask", params={"q": "two"})
        running = [first.__enter__(), second.__enter__()]
        try:
            assert [r.status_code for r in running] == [200, 200]
            deadline = time.monotonic() + 10
            while held.started < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert held.started == 1, "one answer runs, the other waits"
            full = httpx.get(url + "/api/ask", params={"q": "three"}, timeout=10)
            assert full.status_code == 429
            assert int(full.headers["retry-after"]) >= 1 and "busy" in full.json()["error"]
            held.release.set()
            texts = [r.read().decode() for r in running]
            assert "answer to one" in texts[0] and "answer to two" in texts[1]
        finally:
            second.__exit__(None, None, None)
            first.__exit__(None, None, None)
        again = [client.get("/api/ask", params={"q": f"q{i}"}) for i in range(3)]
        assert [r.status_code for r in again] == [200, 200, 200], "every place was given back"


def test_a_client_that_leaves_gives_its_place_back(serve):
    held = HeldAnswerer()
    url = serve(create_app(held, max_concurrent=1, max_queued=0))
    with httpx.Client(base_url=url, timeout=20) as client:
        with client.stream("GET", "/api/ask", params={"q": "left"}) as r:
            assert r.status_code == 200
            assert client.get("/api/ask", params={"q": "meanwhile"}).status_code == 429
    held.release.set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = httpx.get(url + "/api/ask", params={"q": "after"}, timeout=10)
        if r.status_code == 200:
            break
        time.sleep(0.1)
    assert r.status_code == 200 and "answer to after" in r.text


def test_retry_after_follows_the_measured_answer_time():
    now = [0.0]
    gate = Gate(max_concurrent=2, max_queued=2, clock=lambda: now[0])

    async def answer(seconds: float) -> None:
        async with gate.running():
            now[0] += seconds

    asyncio.run(answer(7.0))
    assert all(gate.admit() for _ in range(4)) and not gate.admit()
    assert gate.retry_after() == 7 * 2  # two waiting rounds of two places


def test_an_error_event_never_carries_a_secret(serve, monkeypatch):
    secret = "upstream-key-0123456789abcdef"
    monkeypatch.setenv("RAGKIT_WEB_UPSTREAM_KEY", secret)
    url = serve(create_app(FailingAnswerer()))
    body = httpx.get(url + "/api/ask", params={"q": "hi"}, timeout=10).text
    assert "event: error" in body and "Unavailable" in body and secret not in body


# ------------------------------------------------------------------------------------------ ragkit serve


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("chat.example.org", False),
    ],
)
def test_loopback_is_told_apart(host, local):
    assert is_loopback(host) is local


@pytest.fixture
def no_uvicorn(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the default pipeline's index lives in ./.ragkit
    monkeypatch.delenv("RAGKIT_API_TOKEN", raising=False)
    runs: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: runs.append({"app": app, **kw}))
    return runs


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20"])
def test_serve_refuses_to_listen_beyond_loopback_without_a_token(capsys, no_uvicorn, host):
    assert main(["serve", "--host", host]) == 1
    err = capsys.readouterr().err
    assert "RAGKIT_API_TOKEN" in err and "Traceback" not in err and not no_uvicorn
    assert main(["serve", "--api", "--host", host]) == 1, "the API too"
    assert "Traceback" not in capsys.readouterr().err and not no_uvicorn


def test_serve_beyond_loopback_with_a_token_warns_and_guards(capsys, no_uvicorn, monkeypatch):
    monkeypatch.setenv("RAGKIT_WEB_TOKEN", TOKEN)
    assert main(["serve", "--host", "0.0.0.0", "--port", "8123", "--token-env", "RAGKIT_WEB_TOKEN"]) == 0
    err = capsys.readouterr().err
    assert "warning: listening on 0.0.0.0:8123" in err and TOKEN not in err
    [run] = no_uvicorn
    assert run["host"] == "0.0.0.0" and run["port"] == 8123
    from starlette.testclient import TestClient

    with TestClient(run["app"]) as client:
        assert client.get("/").status_code == 401 and client.get("/api/health").status_code == 200


def test_serve_on_loopback_needs_no_token_and_prints_no_warning(capsys, no_uvicorn):
    assert main(["serve"]) == 0
    assert "warning" not in capsys.readouterr().err and no_uvicorn[0]["host"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("env", "says"),
    [({}, "RAGKIT_WEB_TOKEN"), ({"RAGKIT_WEB_TOKEN": "short"}, "shorter than 16")],
    ids=["unset", "short"],
)
def test_serve_with_a_missing_or_weak_token_is_one_error_line(capsys, no_uvicorn, monkeypatch, env, says):
    monkeypatch.delenv("RAGKIT_WEB_TOKEN", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main(["serve", "--host", "0.0.0.0", "--token-env", "RAGKIT_WEB_TOKEN"]) == 1
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err and not no_uvicorn


@pytest.mark.parametrize("argv", [["--max-queued", "-1"], ["--max-concurrent", "0"], ["--port", "http"]])
def test_serve_checks_its_numbers(capsys, no_uvicorn, argv):
    with pytest.raises(SystemExit) as exited:
        main(["serve", *argv])
    assert exited.value.code == 2 and "Traceback" not in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ a real browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (apt-get install chromium)")
def test_the_page_works_under_its_policy_and_behind_the_token(serve):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip package playwright is not installed")
    held = HeldAnswerer()
    held.release.set()
    url = serve(create_app(held, token=TOKEN))
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            page = browser.new_page()
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            assert page.goto(url + "/").status == 401
            page.goto(url + f"/?token={TOKEN}")
            assert page.url == url + "/", "redirected, the token out of the address"
            page.fill("#question", "Does the policy let the script run?")
            page.click("#send")
            page.wait_for_selector(".turn.done", timeout=15_000)
            answer = page.inner_text(".turn .a")
            styled = page.evaluate("document.styleSheets.length")
        finally:
            browser.close()
    assert answer == "answer to Does the policy let the script run?"
    assert styled == 1, "the inline style was applied"
    assert not [c for c in console if "Content Security Policy" in c], console
