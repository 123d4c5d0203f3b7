"""`ragkit chat`: the terminal chat, streaming, with sources. (`ragkit serve` comes with the web app.)

On a terminal with ``rich`` installed (``pip install 'ragkit[web]'``) the answer streams live as Markdown, unsupported
claims are listed with why, cards and tables a reply carries in ``metadata["views"]`` (the chat page's view data)
are drawn as tables, and sources show their snippet with the question's words highlighted. Elsewhere (a pipe, a
file, no ``rich``) the same content is written as plain text.

A question that fails (a provider down, a bad reply) prints one ``error:`` line and the chat goes on; the exit
code is then 1 (docs/reliability.md), 0 when every question was answered.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ragkit.config import AppBuild

MISSING = "—"
MAX_TABLE_ROWS = 50
HISTORY_TOKENS = 2048


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "chat", help="chat in the terminal: one question per line, streamed answers with sources; /quit ends"
    )
    p.add_argument("--config", help="pipeline YAML; with a 'catalog' section the product bot answers")
    p.add_argument(
        "--generator", help="use this configured generator for free-text answers instead of the router/default"
    )
    p.add_argument("--plain", action="store_true", help="plain text even on a terminal")
    p.set_defaults(func=run_chat)


def build_answerer(config_path: str | None) -> AppBuild:
    """What answers for this pipeline file: the app its config names (the catalog bot), else the RAG pipeline."""
    from ragkit.config import load_pipeline
    from ragkit.pipeline import build_app

    return build_app(load_pipeline(config_path))


# What a reply carries besides its text ---------------------------------------------------------------------------


def flags(reply: Any) -> list[str]:
    """Each claim of the answer no source backs, with why."""
    meta = getattr(reply, "metadata", {}) or {}
    out = list(getattr(meta.get("grounding"), "unsupported", ()))
    out += [f"{c.text}: no catalog value backs it" for c in getattr(meta.get("claims"), "wrong", ())]
    return out


def snippet_parts(text: str, question: str, limit: int = 300) -> list[tuple[str, bool]]:
    """The start of a source's text split into (piece, is one of the question's words) runs."""
    from ragkit.answer.conversation import content_words

    text = " ".join(text.split())
    text = text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"
    words = sorted({w for w in content_words(question) if len(w) > 2}, key=len, reverse=True)
    if not words:
        return [(text, False)]
    out: list[tuple[str, bool]] = []
    at = 0
    for m in re.finditer("|".join(re.escape(w) for w in words), text, flags=re.IGNORECASE):
        out += [(text[at : m.start()], False), (m.group(0), True)]
        at = m.end()
    return [p for p in [*out, (text[at:], False)] if p[0]]


def table_rows(view: dict[str, Any]) -> tuple[list[str], list[list[str]], list[bool]]:
    """A card or table view as (header, rows, winner per row); missing values as ``MISSING``."""
    names = [h.get("label") or h.get("name") or "" for h in view.get("header", [])]
    if view.get("kind") == "card":
        cells = [c.get("text") or MISSING for c in view.get("cells", [])]
        return ["", view.get("label", "")], [list(r) for r in zip(names, cells)], [False] * len(cells)
    rows = [[r.get("label", ""), *[c.get("text") or MISSING for c in r.get("cells", [])]] for r in view["rows"]]
    return ["", *names], rows, [bool(r.get("winner")) for r in view["rows"]]


def caption(view: dict[str, Any], shown: int) -> str:
    chips = "; ".join(c.get("text", "") for c in view.get("chips", []))
    if view.get("kind") == "filter":
        more = f", the first {shown} shown" if shown < len(view["rows"]) else ""
        return f"{view.get('count', len(view['rows']))} matches{more}" + (f" ({chips})" if chips else "")
    if view.get("kind") == "compare":
        winner = next((r["label"] for r in view["rows"] if r.get("winner")), None)
        label = next((h["label"] for h in view["header"] if h["name"] == view.get("attribute")), "")
        return f"compared on {label}" + (f"; winner: {winner}" if winner else "")
    return ""


# Plain text ------------------------------------------------------------------------------------------------------


class PlainOutput:
    """Writes as it comes: the answer's text, then tables as aligned text, flags and sources."""

    async def stream(self, deltas: Any) -> Any:
        from ragkit.commands.answer import print_stream

        return await print_stream(deltas)

    def extras(self, reply: Any, question: str) -> None:
        for view in (reply.metadata or {}).get("views") or []:
            header, rows, winners = table_rows(view)
            shown = rows[:MAX_TABLE_ROWS]
            widths = [max(len(str(x)) for x in col) for col in zip(header, *shown)]
            if text := caption(view, len(shown)):
                print(text)
            for row, win in zip([header, *shown], [False, *winners]):
                line = "  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip()
                print(("* " if win else "  ") + line)
        for f in flags(reply):
            print(f"unsupported: {f}")
        if reply.sources:
            print("Sources:")
            for i, hit in enumerate(reply.sources, 1):
                print(f"  [{i}] {hit.chunk.metadata.get('title') or hit.chunk.doc_id}")
        print()


# rich ------------------------------------------------------------------------------------------------------------


class RichOutput:
    """A live Markdown answer, then tables, flags and sources drawn with ``rich``."""

    def __init__(self, console: Any) -> None:
        self.console = console

    async def stream(self, deltas: Any) -> Any:
        from rich.live import Live
        from rich.markdown import Markdown

        from ragkit.errors import ProviderError

        text, final = "", None
        with Live(Markdown(""), console=self.console, refresh_per_second=12, vertical_overflow="visible") as live:
            async for delta in deltas:
                if delta.text:
                    text += delta.text
                    live.update(Markdown(text))
                if delta.reply is not None:
                    final = delta.reply
            if final is not None and final.text != text:
                live.update(Markdown(final.text))
        if final is None:
            raise ProviderError("the answer stream ended without its final reply")
        return final

    def extras(self, reply: Any, question: str) -> None:
        from rich.table import Table
        from rich.text import Text

        for view in (reply.metadata or {}).get("views") or []:
            header, rows, winners = table_rows(view)
            shown = rows[:MAX_TABLE_ROWS]
            deciding = next(
                (k + 1 for k, h in enumerate(view.get("header", [])) if h.get("name") == view.get("attribute")), None
            )
            table = Table(title=caption(view, len(shown)) or None, show_header=view.get("kind") != "card")
            for k, name in enumerate(header):
                table.add_column(name + (" (deciding)" if k == deciding else ""), overflow="fold")
            for row, win in zip(shown, winners):
                cells = [Text(str(x)) for x in row]
                if win:
                    cells[0].append(" ✓ winner", style="bold green")
                    if deciding is not None:
                        cells[deciding].stylize("bold green")
                table.add_row(*cells)
            self.console.print(table)
        for f in flags(reply):
            self.console.print(Text("⚠ unsupported: ", style="bold yellow") + Text(f))
        if reply.sources:
            table = Table(title="Sources", show_lines=False)
            for name in ("", "source", "id", "snippet"):
                table.add_column(name, overflow="fold")
            for i, hit in enumerate(reply.sources, 1):
                snippet = Text()
                for piece, matched in snippet_parts(hit.chunk.text, question):
                    snippet.append(piece, style="reverse" if matched else None)
                title = str(hit.chunk.metadata.get("title") or hit.chunk.doc_id)
                table.add_row(f"[{i}]", Text(title), Text(hit.chunk.doc_id), snippet)
            self.console.print(table)
        self.console.print()


def output_for(plain: bool) -> PlainOutput | RichOutput:
    """rich on a terminal when it is installed and not refused, else plain text."""
    if plain or not sys.stdout.isatty():
        return PlainOutput()
    try:
        from rich.console import Console
    except ImportError:
        return PlainOutput()
    return RichOutput(Console())


def run_chat(args) -> int:
    from ragkit._aio import run_sync
    from ragkit.answer.budget import tiktoken_counter
    from ragkit.answer.conversation import trim_history
    from ragkit.component import scrub
    from ragkit.errors import RagkitError
    from ragkit.types import Message

    print("loading…", file=sys.stderr)
    app = build_answerer(args.config)
    answerer, title, note = app.answerer, app.title, app.note
    interactive = sys.stdin.isatty()
    reconfigure = getattr(sys.stdin, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="replace")  # a stray byte in a piped file is one odd character, not a crash
    if note:
        print(note, file=sys.stderr)
    print(f"{title}: ask in English or German; /quit ends.", file=sys.stderr)
    out = output_for(getattr(args, "plain", False))
    count = tiktoken_counter()
    history: list[Message] = []
    failed = 0

    while True:
        if interactive:
            sys.stdout.write("> ")
            sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:
            break
        question = line.strip()
        if not question:
            continue
        if question in ("/quit", "/exit", "/q"):
            break
        if question in ("/new", "/reset"):
            history = []
            print("(new conversation)", file=sys.stderr)
            continue
        kept = tuple(trim_history(history, count, HISTORY_TOKENS))
        try:
            reply = run_sync(out.stream(answerer.astream(question, history=kept, generator=args.generator)))
        except RagkitError as e:
            failed += 1
            print(f"error: {scrub(str(e))}", file=sys.stderr)
            continue
        out.extras(reply, question)
        history += [Message("user", question), Message("assistant", reply.text)]
    return 1 if failed else 0
