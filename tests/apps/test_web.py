"""The web chat: the SSE endpoint over HTTP, and the page in a real headless Chromium (Debian's, via Playwright)."""

from __future__ import annotations

import shutil

import pytest
from live_server import serving

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")

from paths import ARTIFACTS, EXAMPLES  # noqa: E402

from ragkit.apps.catalog.bot import CatalogBot  # noqa: E402
from ragkit.apps.catalog.catalog import load_catalog  # noqa: E402
from ragkit.apps.web import create_app  # noqa: E402
from ragkit.config import parse_pipeline  # noqa: E402
from ragkit.pipeline import RAG  # noqa: E402
from ragkit.testing import FakeEmbedder, FakeGenerator  # noqa: E402

EXAMPLE = EXAMPLES / "product_qa"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def bot(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web")
    config = parse_pipeline(
        {
            "index_dir": str(tmp / "index"),
            "catalog": {
                "path": str(EXAMPLE / "catalog.json"),
                "schema_file": str(EXAMPLE / "catalog.schema.yaml"),
                "docs_dir": str(EXAMPLE / "docs"),
            },
            "store": {"type": "qdrant_edge", "path": str(tmp / "index" / "store")},
            "generators": {"local": {"type": "llamacpp"}},
        }
    )
    rag = RAG(
        config,
        embedder=FakeEmbedder(dim=64),
        generators={"local": FakeGenerator(["Use an explosion-proof model [1]."])},
    )
    b = CatalogBot(rag, load_catalog(config.sections["catalog"]), config.sections["catalog"].bot)
    b.ensure_index()
    return b


@pytest.fixture(scope="module")
def server(bot):
    with serving(create_app(bot, title="Lab fridge questions", note="Invented example catalog.")) as url:
        yield url


def _events(body: str) -> list[tuple[str, str]]:
    out = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], lines["data"]))
    return out


def test_sse_stream_answer_then_sources(server):
    import json

    import httpx

    r = httpx.get(server + "/api/ask", params={"q": "Was kostet labo-288?"}, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _events(r.text)
    names = [e for e, _ in events]
    assert names[0] == "meta" and names[-3:] == ["view", "sources", "done"] and len(names) > 5
    assert set(names[1:-3]) == {"delta"}
    text = "".join(json.loads(d)["text"] for e, d in events if e == "delta")
    assert "2490 EUR" in text and text.startswith("Der Listenpreis")
    [source] = json.loads(events[-2][1])
    assert (source["n"], source["doc_id"], source["title"]) == (1, "LABO-288", "LABO-288 — Labofrost LR 288")
    assert json.loads(events[0][1]) == {"lang": "de", "query": "Was kostet labo-288?"}
    assert httpx.get(server + "/api/ask", timeout=10).status_code == 400


def test_page_is_self_contained(server):
    import httpx

    html = httpx.get(server + "/", timeout=10).text
    assert "<script>" in html and 'fetch("api/ask"' in html
    assert "http://" not in html and "https://" not in html  # no CDN: works offline


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (apt-get install chromium)")
def test_page_in_a_real_browser(server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip package playwright is not installed")
    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 600})
            page.goto(server + "/")
            page.fill("#question", "Which has the larger volume, LABO-288 or MED-COOL-300?")
            page.click("#send")
            page.wait_for_selector(".turn.done", timeout=15_000)
            answer = page.inner_text(".turn .a")
            sources = page.inner_text(".turn .sources")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "web_chat.png"), full_page=True)
        finally:
            browser.close()
    assert answer.startswith("MED-COOL-300") and "300 litres" in answer and "288 litres" in answer
    assert "LABO-288 — Labofrost LR 288" in sources and "MED-COOL-300 — MediCool Pharma 300" in sources
