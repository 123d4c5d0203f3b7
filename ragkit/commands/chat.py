"""`ragkit chat`: the terminal chat, streaming, with sources. (`ragkit serve` comes with the web app.)

A question that fails (a provider down, a bad reply) prints one ``error:`` line and the chat goes on; the exit
code is then 1 (docs/reliability.md), 0 when every question was answered.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ragkit.config import AppBuild


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "chat", help="chat in the terminal: one question per line, streamed answers with sources; /quit ends"
    )
    p.add_argument("--config", help="pipeline YAML; with a 'catalog' section the product bot answers")
    p.add_argument(
        "--generator", help="use this configured generator for free-text answers instead of the router/default"
    )
    p.set_defaults(func=run_chat)


def build_answerer(config_path: str | None) -> AppBuild:
    """What answers for this pipeline file: the app its config names (the catalog bot), else the RAG pipeline."""
    from ragkit.config import load_pipeline
    from ragkit.pipeline import build_app

    return build_app(load_pipeline(config_path))


def run_chat(args) -> int:
    from ragkit._aio import run_sync
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
    history: list[Message] = []
    failed = 0

    from ragkit.commands.answer import print_stream

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
        try:
            reply = run_sync(
                print_stream(answerer.astream(question, history=tuple(history[-4:]), generator=args.generator))
            )
        except RagkitError as e:
            failed += 1
            print(f"error: {scrub(str(e))}", file=sys.stderr)
            continue
        if reply is not None and reply.sources:
            print("Sources:")
            for i, hit in enumerate(reply.sources, 1):
                print(f"  [{i}] {hit.chunk.metadata.get('title') or hit.chunk.doc_id}")
        print()
        if reply is not None:
            history += [Message("user", question), Message("assistant", reply.text)]
    return 1 if failed else 0
