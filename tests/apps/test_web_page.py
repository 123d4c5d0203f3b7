"""The chat page in a real headless Chromium (Debian's, via Playwright) over the catalog bot's deterministic paths
(exact ids, comparisons, filters; rules planner, fake generator): spec cards, comparison and filter tables, sources
that open, grounding flags, a conversation, stop, and axe-core's accessibility rules. Screenshots go to
tests/artifacts/. The same flows run on the example catalog and on the WHO catalog (examples/product_qa/who.yaml).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import shutil
import time
from typing import Any

import pytest

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api", reason="pip package playwright is not installed")

from live_server import LiveServer  # noqa: E402
from paths import ARTIFACTS, EXAMPLES, SHARED  # noqa: E402

from ragkit.apps.catalog.bot import CatalogBot  # noqa: E402
from ragkit.apps.catalog.catalog import load_catalog  # noqa: E402
from ragkit.apps.web import create_app  # noqa: E402
from ragkit.apps.web_view import MISSING  # noqa: E402
from ragkit.config import load_pipeline, parse_pipeline  # noqa: E402
from ragkit.pipeline import RAG  # noqa: E402
from ragkit.testing import FakeEmbedder, FakeGenerator  # noqa: E402
from ragkit.types import Chunk, Delta, Hit, Reply  # noqa: E402

EXAMPLE = EXAMPLES / "product_qa"
WHO_CSV = SHARED / "catalogs" / "who_pqs_vaccine_fridges_hermes" / "fridgeTypeInfo.csv"
AXE = EXAMPLES.parent / "tests" / "apps" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (apt-get install chromium)")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def _bot(config: Any, section: Any) -> CatalogBot:
    section = section.model_copy(update={"bot": section.bot.model_copy(update={"planner": "rules"})})
    rag = RAG(config, embedder=FakeEmbedder(dim=64), generators={"local": FakeGenerator(["Not used [1]."])})
    bot = CatalogBot(rag, load_catalog(section), section.bot)
    bot.ensure_index()
    return bot


def example_bot(tmp, catalog_path=EXAMPLE / "catalog.json", docs=True) -> CatalogBot:
    catalog = {"path": str(catalog_path), "schema_file": str(EXAMPLE / "catalog.schema.yaml")}
    if docs:
        catalog["docs_dir"] = str(EXAMPLE / "docs")
    config = parse_pipeline(
        {
            "index_dir": str(tmp / "index"),
            "catalog": catalog,
            "store": {"type": "qdrant_edge", "path": str(tmp / "index" / "store")},
            "generators": {"local": {"type": "llamacpp"}},
        }
    )
    return _bot(config, config.sections["catalog"])


def who_bot(tmp) -> CatalogBot:
    who = load_pipeline(EXAMPLE / "who.yaml")
    store = who.components["store"]
    store = store.__class__("store", "qdrant_edge", store.config.model_copy(update={"path": str(tmp / "store")}))
    section = who.sections["catalog"]
    who = dataclasses.replace(
        who, index_dir=str(tmp), sections={"catalog": section}, components={**who.components, "store": store}
    )
    return _bot(who, section)


@pytest.fixture(scope="module", params=["example", "who"])
def site(request, tmp_path_factory):
    """(base URL, bot, catalog name) for one catalog."""
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "who":
        if not WHO_CSV.exists():
            pytest.skip("shared WHO/HERMES catalog not present")
        bot = who_bot(tmp)
    else:
        bot = example_bot(tmp)
    server = LiveServer(create_app(bot, title=f"{request.param} catalog", note="Test catalog."))
    yield server.url, bot, request.param
    server.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    p = browser.new_page(viewport={"width": 1100, "height": 800})
    errors: list[str] = []
    p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    p.close()
    assert not errors, errors


def ask(page, question: str) -> Any:
    """Ask on the page and wait until the answer has finished; the turn's element."""
    n = page.locator(".turn").count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    page.locator(".turn.finished").nth(n).wait_for(timeout=20_000)
    return page.locator(".turn").nth(n)


def until(page, expression: str, timeout: float = 15.0) -> None:
    """Poll ``expression`` in the page (``wait_for_function`` evaluates strings, which the page's CSP forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)


def shot(page, name: str, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)


def priced(bot: CatalogBot, k: int = 2) -> list[Any]:
    """``k`` products of one currency with different prices, from the catalog itself."""
    by_unit: dict[str, list[Any]] = {}
    for p in bot.catalog:
        v = p.value("price")
        if isinstance(v, (int, float)) and p.units.get("price"):
            by_unit.setdefault(p.units["price"], []).append(p)
    group = max(by_unit.values(), key=len)
    chosen, seen = [], set()
    for p in group:
        if p.value("price") not in seen:
            chosen.append(p)
            seen.add(p.value("price"))
        if len(chosen) == k:
            return chosen
    raise AssertionError("no products to compare")


def price_text(bot: CatalogBot, p: Any) -> str:
    v = p.value("price")
    return f"{v:g} {p.units['price']}"


def test_a_comparison_renders_the_named_products_with_the_winner_marked(site, page):
    url, bot, name = site
    a, b = priced(bot)
    page.goto(url + "/")
    turn = ask(page, f"Which is cheaper, {a.id} or {b.id}?")
    table = turn.locator(".view.compare table")
    assert [r.get_attribute("data-id") for r in table.locator("tbody tr").all()] == [a.id, b.id]
    cheaper = a if a.value("price") < b.value("price") else b
    winners = table.locator("tbody tr.winner")
    assert winners.count() == 1 and winners.get_attribute("data-id") == cheaper.id
    assert "winner" in winners.locator("th").inner_text()
    deciding = table.locator("thead th.deciding")
    assert deciding.count() == 1 and bot.catalog.schema["price"].label("en") in deciding.inner_text()
    assert winners.locator("td.win").inner_text() == price_text(bot, cheaper)
    shot(page, f"web_{name}_compare.png")


def _numbers(cells: list[str]) -> list[float]:
    return [float(re.match(r"[\d.]+", c).group(0)) for c in cells]


def test_a_filter_renders_a_sortable_table_of_every_match(site, page):
    url, bot, name = site
    limit = 3000 if name == "example" else 1000
    page.goto(url + "/")
    turn = ask(page, f"Which refrigerators cost less than {limit} EUR?")
    stated = int(re.match(r"(\d+) products", turn.locator(".a").inner_text()).group(1))
    table = turn.locator(".view.filter table")
    rows = table.locator("tbody tr")
    assert rows.count() == stated > 2
    assert table.locator("caption").inner_text() == f"{stated} matches"
    chips = turn.locator(".chips li")
    assert chips.count() == 2 and any("< 1000 EUR" in c or "< 3000 EUR" in c for c in chips.all_inner_texts())
    headers = [h.get_attribute("data-col") for h in table.locator("thead th button").all()]
    column = headers.index("price") + 1
    before = [r.get_attribute("data-id") for r in rows.all()]
    table.locator("thead button[data-col=price]").click()
    prices = _numbers([r.locator("td, th").nth(column).inner_text() for r in rows.all()])
    assert prices == sorted(prices) and all(p < limit for p in prices)
    assert all(c.endswith(" EUR") for c in [r.locator("td, th").nth(column).inner_text() for r in rows.all()])
    table.locator("thead button[data-col=price]").press("Enter")  # the keyboard sorts too
    again = _numbers([r.locator("td, th").nth(column).inner_text() for r in rows.all()])
    assert again == sorted(prices, reverse=True)
    assert [r.get_attribute("data-id") for r in rows.all()] != before
    assert table.locator("th[aria-sort=descending]").count() == 1
    shot(page, f"web_{name}_filter.png")
    # Removing the price chip runs the filter again without it: more matches.
    chip = turn.locator(".chips li", has_text="<").locator("button")
    chip.click()
    until(
        page,
        "document.querySelector('.view.filter caption') && "
        f"parseInt(document.querySelector('.view.filter caption').textContent) > {stated}",
    )
    assert turn.locator(".chips li").count() == 1


def test_a_spec_card_and_a_source_that_opens(site, page):
    url, bot, name = site
    p = priced(bot, 1)[0]
    page.goto(url + "/")
    turn = ask(page, f"Tell me about {p.id}")
    card = turn.locator(".card")
    assert card.count() == 1 and card.get_attribute("data-id") == p.id
    assert bot.catalog.label(p) == card.locator("h3").inner_text()
    values = dict(zip(card.locator("dt").all_inner_texts(), card.locator("dd").all_inner_texts()))
    assert values[bot.catalog.schema["price"].label("en")] == price_text(bot, p)
    assert not [v for v in values.values() if v in ("None", "null", "", "?")], values
    summary = turn.locator(".sources summary").first
    snippet = turn.locator(".sources .snippet").first
    assert not snippet.is_visible()
    summary.focus()
    page.keyboard.press("Enter")
    assert snippet.is_visible()
    assert p.id in turn.locator(".sources .pid").first.inner_text()
    shot(page, f"web_{name}_card.png")


def test_a_two_turn_conversation_follows_up(site, page):
    url, bot, name = site
    a, b = priced(bot)
    page.goto(url + "/")
    first = ask(page, f"Tell me about {a.id}")
    assert a.id in first.locator(".a").inner_text()
    second = ask(page, "How much does it cost?")
    assert price_text(bot, a) in second.locator(".a").inner_text()
    assert a.id in second.get_attribute("data-query")
    third = ask(page, f"Which is cheaper, {a.id} or {b.id}?")
    assert third.locator(".view.compare").count() == 1
    fourth = ask(page, "Und welches hat das größere Volumen?" if name == "example" else "Und welcher ist teurer?")
    assert page.evaluate("document.documentElement.lang") == "de" and page.inner_text("#send") == "Fragen"
    rows = fourth.locator(".view.compare tbody tr")
    assert sorted(r.get_attribute("data-id") for r in rows.all()) == sorted([a.id, b.id])
    shot(page, f"web_{name}_conversation.png")
    page.click("#new")
    assert page.locator(".turn").count() == 0
    fresh = ask(page, "How much does it cost?")  # nothing to refer back to any more
    assert price_text(bot, a) not in fresh.locator(".a").inner_text()


def test_axe_finds_no_serious_or_critical_violations(site, page):
    if not AXE.exists():
        pytest.skip("axe-core is not installed: run scripts/bootstrap.sh (npm install axe-core into tests/apps/axe)")
    url, bot, name = site
    a, b = priced(bot)
    page.goto(url + "/")
    ask(page, f"Tell me about {a.id}")
    ask(page, f"Which is cheaper, {a.id} or {b.id}?")
    turn = ask(page, "Which refrigerators cost less than 3000 EUR?")
    turn.locator(".sources summary").first.click()
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")  # run by DevTools, not as a page script
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    assert result["testEngine"]["name"] == "axe-core" and result["violations"] is not None
    bad = [
        (v["id"], v["impact"], len(v["nodes"])) for v in result["violations"] if v["impact"] in ("serious", "critical")
    ]
    assert not bad, bad


# ------------------------------------------------------------------------------------------ bad input


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A catalog of 520 products: one named with HTML and script, some without an energy figure."""
    tmp = tmp_path_factory.mktemp("big")
    rows = []
    for k in range(520):
        rows.append(
            {
                "id": f"BIG-{k:03d}",
                "name": "<img src=x onerror=window.pwned=1><script>window.pwned=2</script>" if k == 7 else f"Big {k}",
                "manufacturer": "Bigfrost",
                "category": "laboratory refrigerator",
                "volume_l": 100 + k,
                "price": float(1000 + (k * 37) % 900),
                "currency": "EUR",
                "energy_kwh_per_day": 1.5 if k % 2 else None,
                **dict.fromkeys(["temp_min_c", "temp_max_c", "door", "width_mm", "depth_mm", "height_mm"]),
                **dict.fromkeys(["monitoring", "alarms"]),
            }
        )
    path = tmp / "big.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    server = LiveServer(create_app(example_bot(tmp, path, docs=False)))
    yield server.url
    server.close()


def test_500_matches_page_with_show_more_and_catalog_html_is_text(big, page):
    page.goto(big + "/")
    turn = ask(page, "Which laboratory refrigerators cost less than 5000 EUR?")
    table = turn.locator(".view.filter table")
    assert table.locator("caption").inner_text() == "520 matches"
    assert table.locator("tbody tr").count() == 50
    more = turn.locator("button.more")
    assert "470" in more.inner_text()
    more.click()
    assert table.locator("tbody tr").count() == 100
    table.locator("thead button[data-col=price]").click()
    assert table.locator("tbody tr").count() == 100, "sorting keeps the rows shown"
    while turn.locator("button.more").is_visible():
        turn.locator("button.more").click()
    assert table.locator("tbody tr").count() == 520
    assert "<script>window.pwned=2</script>" in table.locator("tr[data-id=BIG-007] th").inner_text()
    assert page.evaluate("window.pwned") is None
    assert page.locator("img").count() == 0
    energy = page.locator("thead button[data-col=energy_kwh_per_day]")
    col = [h.get_attribute("data-col") for h in table.locator("thead th button").all()].index("energy_kwh_per_day")
    for _ in range(2):  # ascending, then descending: products without the value stay last
        energy.click()
        column = [c.split("\t")[col + 1] for c in table.locator("tbody tr").all_inner_texts()]
        assert column[:260] == ["1.5 kWh per day"] * 260 and column[260:] == [MISSING] * 260
    cells = page.locator("tbody tr").all_inner_texts()
    assert any("—" in c for c in cells) and not any(re.search(r"\b(None|null|undefined|NaN)\b", c) for c in cells)
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "web_big_filter.png", full_page=False)


class ScriptedAnswerer:
    """Answers with a cited claim and an unsupported one; the source text holds HTML; streams slowly on request."""

    def __init__(self) -> None:
        self.slow = False

    async def astream(self, question: str, **_: Any):
        if self.slow:
            for k in range(200):
                yield Delta(text=f"word{k} ")
                await asyncio.sleep(0.05)
        text = "The LX-9 holds 300 litres [1]. It costs 999 EUR [2]."
        yield Delta(text=text)
        body = "<b>LX-9</b> <script>window.pwned=3</script> holds 300 litres of samples."
        hit = Hit(
            Chunk(id="lx9#0", doc_id="LX-9", text=body, start=0, end=len(body), metadata={"title": "LX-9 <i>"}), 1.0
        )
        from ragkit.answer.grounding import check_grounding

        grounding = check_grounding(text, [body])
        yield Delta(reply=Reply(text=text, model="scripted", sources=(hit,), metadata={"grounding": grounding}))


def test_markers_link_sources_and_unsupported_claims_show_why(browser):
    answerer = ScriptedAnswerer()
    server = LiveServer(create_app(answerer))
    page = browser.new_page()
    try:
        page.goto(server.url + "/")
        turn = ask(page, "How big is the LX-9 and what does it hold?")
        assert turn.locator(".a").inner_text() == "The LX-9 holds 300 litres [1]. It costs 999 EUR [2]."
        flags = turn.locator("mark.flag")
        texts = flags.all_inner_texts()
        assert "999 EUR" in texts and "[2]" in texts and "300 litres" not in texts
        flag = turn.locator("mark.flag", has_text="999 EUR")
        flag.focus()
        assert "no source holds" in flag.get_attribute("data-reason")
        turn.locator("a.cite", has_text="[1]").click()
        snippet = turn.locator(".sources .snippet")
        assert snippet.is_visible() and "<script>window.pwned=3</script>" in snippet.inner_text()
        assert {"LX-9", "hold"} <= set(snippet.locator("mark").all_inner_texts())
        assert turn.locator(".sources summary").inner_text() == "[1] LX-9 <i>"
        assert page.evaluate("window.pwned") is None
        shot(page, "web_flags.png")
        answerer.slow = True
        page.fill("#question", "Tell me everything")
        page.click("#send")
        until(page, "document.querySelectorAll('.turn')[1].textContent.includes('word3')")
        page.click("#stop")
        page.wait_for_selector(".turn.stopped")
        stopped = page.locator(".turn").nth(1).locator(".a").inner_text()
        assert "word199" not in stopped and page.locator("#send").is_enabled()
    finally:
        page.close()
        server.close()
