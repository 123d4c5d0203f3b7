"""All three example catalogs through their own YAML: the ENERGY STAR list at full size on the real Qdrant edge store,
and `ragkit chat` and the web page (SSE, and Chromium when installed) on each."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import shutil

import pytest
from live_server import serving
from paths import EXAMPLES, SHARED

from ragkit.apps.catalog.bot import CatalogBot
from ragkit.cli import main
from ragkit.config import load_pipeline
from ragkit.language import is_abstention
from ragkit.pipeline import build_app
from ragkit.testing import FakeEmbedder, FakeGenerator

EXAMPLE = EXAMPLES / "product_qa"
DATA = SHARED / "catalogs"
ENERGYSTAR = DATA / "energystar_residential_refrigerators" / "ENERGY_STAR_Certified_Residential_Refrigerators.csv"
WHO = DATA / "who_pqs_vaccine_fridges_hermes" / "fridgeTypeInfo.csv"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Per example config: a question, text its answer must hold, and the data file it needs.
CASES = {
    "bot.yaml": ("Was kostet LABO-288?", "2490 EUR", EXAMPLE / "catalog.json"),
    "who.yaml": ("What is the storage volume of the Vestfrost MK 204?", "75 litres", WHO),
    "energystar.yaml": ("How tall is the Sharp SJG2254FS?", "69.9 in", ENERGYSTAR),
}


def _app(name: str, tmp):
    """The example's pipeline with the index in ``tmp``, a fake embedder and no planner model (rules plan)."""
    cfg = load_pipeline(EXAMPLE / name)
    section = cfg.sections["catalog"]
    section = section.model_copy(update={"bot": section.bot.model_copy(update={"planner": "rules"})})
    store = cfg.components["store"]
    store = dataclasses.replace(store, config=store.config.model_copy(update={"path": str(tmp / "store")}))
    cfg = dataclasses.replace(
        cfg, index_dir=str(tmp), sections={"catalog": section}, components={**cfg.components, "store": store}
    )
    app = build_app(cfg, embedder=FakeEmbedder(dim=64), generators={"local": FakeGenerator(["No idea."])})
    app.answerer.ensure_index()
    return app


@pytest.fixture(scope="module", params=list(CASES))
def example(request, tmp_path_factory):
    question, expected, data = CASES[request.param]
    if not data.exists():
        pytest.skip(f"{data} not present")
    return request.param, _app(request.param, tmp_path_factory.mktemp(request.param.split(".")[0])), question, expected


def test_ragkit_chat_answers_on_each_example_catalog(example, monkeypatch, capsys):
    name, app, question, expected = example
    monkeypatch.setattr("ragkit.commands.chat.build_answerer", lambda path: app)
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{question}\n/quit\n"))
    assert main(["chat", "--config", str(EXAMPLE / name)]) == 0
    out = capsys.readouterr().out
    assert expected in out and "Sources:" in out


@pytest.fixture(scope="module")
def served(example):
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    from ragkit.apps.web import create_app

    name, app, question, expected = example
    with serving(create_app(app.answerer, title=app.title, note=app.note)) as url:
        yield url, question, expected


def test_web_stream_on_each_example_catalog(served):
    import httpx

    url, question, expected = served
    r = httpx.get(url + "/api/ask", params={"q": question}, timeout=60)
    events = [block.split("\n") for block in r.text.strip().split("\n\n")]
    text = "".join(json.loads(lines[1][6:])["text"] for lines in events if lines[0] == "event: delta")
    assert expected in text


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (apt-get install chromium)")
def test_web_page_in_chromium_on_each_example_catalog(served):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip package playwright is not installed")
    url, question, expected = served
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(url + "/")
            page.fill("#question", question)
            page.click("#send")
            page.wait_for_selector(".turn.done", timeout=30_000)
            answer = page.inner_text(".turn .a")
        finally:
            browser.close()
    assert expected in answer


@pytest.fixture(scope="module")
def energystar(tmp_path_factory):
    if not ENERGYSTAR.exists():
        pytest.skip("shared ENERGY STAR catalog not present")
    app = _app("energystar.yaml", tmp_path_factory.mktemp("energystar"))
    with ENERGYSTAR.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    return app.answerer.answerer, rows  # the bot inside the view-carrying wrapper


def test_energystar_at_full_size_filters_and_ranks_like_the_csv(energystar):
    bot, rows = energystar
    assert isinstance(bot, CatalogBot) and len(bot.catalog) == len(rows) == 2962
    with_ice = [r for r in rows if r["Brand Name"] == "Sub-Zero" and r["Ice Maker"] == "Yes"]
    reply = bot.ask("How many Sub-Zero models have an ice maker?")
    assert f"{len(with_ice)} products" in reply.text
    lowest = min(rows, key=lambda r: float(r["Annual Energy Use (kWh/yr)"]))
    reply = bot.ask("Which refrigerator in the whole list has the lowest annual energy use?")
    assert lowest["Model Number"] in reply.text and bot.checker(reply.text).ok
    whynter = [r for r in rows if r["Brand Name"] == "Whynter"]
    smallest = min(whynter, key=lambda r: float(r["Capacity (Total Volume) (ft3)"]))
    assert smallest["Model Number"].strip() in bot.ask("Welcher Whynter hat das kleinste Fassungsvermögen?").text


def test_energystar_wildcard_models_lookups_and_unanswerables(energystar):
    bot, rows = energystar
    row = next(r for r in rows if r["Model Number"] == "BI-36R/*/**")
    reply = bot.ask("How much energy does the Sub-Zero BI-36R/*/** use per year?")
    assert f"{row['Annual Energy Use (kWh/yr)']} kWh/yr" in reply.text
    for question in (
        "How much does the Sub-Zero BI-36R/*/** cost?",  # no prices in this catalog
        "What is the annual energy use of the Siemens KG36NXI35?",  # no such product
        "Wie groß ist der Vestfrost SW 350?",
    ):
        assert is_abstention(bot.ask(question).text), question
