"""The terminal chat: the catalog bot's cards and tables (the page's view data) drawn with rich on a terminal and as
aligned plain text elsewhere, unsupported claims with why, sources with their snippet, /new clearing the history."""

from __future__ import annotations

import asyncio
import io
import re
from typing import Any

import pytest
from paths import EXAMPLES

from ragkit.apps.web_view import ViewingAnswerer
from ragkit.cli import main
from ragkit.commands import chat
from ragkit.config import AppBuild, parse_pipeline
from ragkit.pipeline import build_app
from ragkit.testing import FakeEmbedder, FakeGenerator

EXAMPLE = EXAMPLES / "product_qa"


class Recording:
    """The built answerer, recording the history each question came with."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.histories: list[tuple[Any, ...]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def astream(self, question: str, *, history: Any = (), **kw: Any):
        self.histories.append(tuple(history))
        async for delta in self.inner.astream(question, history=history, **kw):
            yield delta


@pytest.fixture(scope="module")
def answerer(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("terminal")
    config = parse_pipeline(
        {
            "index_dir": str(tmp / "index"),
            "catalog": {
                "path": str(EXAMPLE / "catalog.json"),
                "schema_file": str(EXAMPLE / "catalog.schema.yaml"),
                "docs_dir": str(EXAMPLE / "docs"),
                "bot": {"planner": "rules"},
            },
            "store": {"type": "qdrant_edge", "path": str(tmp / "index" / "store")},
            "generators": {"local": {"type": "llamacpp"}},
        }
    )
    # What `ragkit chat --config` builds: the catalog section's app, whose replies carry the page's views.
    app = build_app(config, embedder=FakeEmbedder(dim=64), generators={"local": FakeGenerator(["Not used."])})
    assert isinstance(app.answerer, ViewingAnswerer)
    app.answerer.ensure_index()
    return Recording(app.answerer)


def test_plain_chat_writes_tables_with_the_winner_and_sources(answerer, monkeypatch, capsys):
    app = AppBuild(answerer=answerer, rag=answerer.rag, title="Lab fridges")
    monkeypatch.setattr("ragkit.commands.chat.build_answerer", lambda path: app)
    questions = ["Which is cheaper, LABO-288 or MED-COOL-300?", "Tell me about LABO-288", "/new", "What is it?"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(questions) + "\n/quit\n"))
    assert main(["chat"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    winner = [line for line in lines if line.startswith("* ")]
    assert len(winner) == 1 and "LABO-288" in winner[0] and "2490 EUR" in winner[0]
    assert any("MED-COOL-300" in line and "2950 EUR" in line for line in lines)
    assert "compared on list price; winner: LABO-288 (Labofrost LR 288)" in out
    assert any(line.strip().startswith("list price") and line.rstrip().endswith("2490 EUR") for line in lines)
    assert "Sources:" in out and "None" not in out
    assert [len(h) for h in answerer.histories[-3:]] == [0, 2, 0], "/new cleared the history"


def test_rich_draws_tables_snippets_and_missing_values(answerer):
    pytest.importorskip("rich")
    from rich.console import Console

    buf = io.StringIO()
    out = chat.RichOutput(Console(file=buf, force_terminal=True, width=160, color_system=None))

    async def run(question: str) -> Any:
        reply = await out.stream(answerer.astream(question))
        out.extras(reply, question)
        return reply

    asyncio.run(run("Which is cheaper, LABO-288 or MED-COOL-300?"))
    reply = asyncio.run(run("Which refrigerators cost less than 3000 EUR?"))
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", buf.getvalue())
    (ARTIFACTS_DIR := __import__("paths").ARTIFACTS).mkdir(exist_ok=True)
    (ARTIFACTS_DIR / "terminal_chat.txt").write_text(text, encoding="utf-8")
    table = text[text.index("compared on list price") :]
    assert text.count("✓ winner") == 1 and "(deciding)" in table
    assert table.index("│ LABO-288 (Labofrost") < table.index("✓ winner") < table.index("│ MED-COOL-300")
    assert "10 matches" in text and text.count("MED-COOL-300 (MediCool Pharma 300)") >= 2
    assert "—" in text, "KN-LR-130 lists no alarms"
    assert "Sources" in text and "KN-LR-130" in text
    assert len(reply.metadata["views"][0]["rows"]) == 10


def test_snippets_mark_the_question_words_and_flags_say_why():
    parts = chat.snippet_parts("The LABO-288 holds 288 litres.", "How much does the LABO-288 hold?")
    assert ("LABO-288", True) in parts and ("hold", True) in parts and "".join(p for p, _ in parts).startswith("The")
    [(long, _)] = chat.snippet_parts("word " * 100, "q")
    assert long.endswith(" …") and len(long) <= 302
