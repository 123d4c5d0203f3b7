"""`ragkit chat` (terminal, streaming, with sources) and `ragkit serve` (the web chat page)."""

from __future__ import annotations

import sys


def add_parsers(sub) -> None:
    p = sub.add_parser("chat", help="chat in the terminal: one question per line, streamed answers with sources; /quit ends")
    p.add_argument("--config", help="pipeline YAML; with a 'catalog' section the product bot answers")
    p.add_argument("--generator", help="use this configured generator for free-text answers instead of the router/default")
    p.set_defaults(func=run_chat)

    p = sub.add_parser("serve", help="serve the chat web page (needs the 'web' extra)")
    p.add_argument("--config", help="pipeline YAML; with a 'catalog' section the product bot answers")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.set_defaults(func=run_serve)


def build_answerer(config_path: str | None):
    """The catalog bot when the pipeline has a catalog, else the plain RAG pipeline; plus a title and a note."""
    from ragkit.config import load_pipeline

    config = load_pipeline(config_path)
    if config.catalog is not None:
        from ragkit.catalog_bot import CatalogBot

        bot = CatalogBot.from_config(config)
        bot.ensure_index()
        return bot, "Product questions", config.catalog.licence_note or ""
    from ragkit.pipeline import RAG

    return RAG(config), "Questions", ""


def run_chat(args) -> int:
    from ragkit._aio import run_sync
    from ragkit.types import Message

    print("loading…", file=sys.stderr)
    answerer, title, note = build_answerer(args.config)
    interactive = sys.stdin.isatty()
    if note:
        print(note, file=sys.stderr)
    print(f"{title}: ask in English or German; /quit ends.", file=sys.stderr)
    history: list[Message] = []

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
        reply = run_sync(print_stream(answerer.astream(question, history=tuple(history[-4:]), generator=args.generator)))
        if reply is not None and reply.sources:
            print("Sources:")
            for i, hit in enumerate(reply.sources, 1):
                print(f"  [{i}] {hit.chunk.metadata.get('title') or hit.chunk.doc_id}")
        print()
        if reply is not None:
            history += [Message("user", question), Message("assistant", reply.text)]
    return 0


def run_serve(args) -> int:
    try:
        import uvicorn
    except ImportError:
        print("error: ragkit serve needs uvicorn: pip install 'ragkit[web]'", file=sys.stderr)
        return 1
    from ragkit.web import create_app

    answerer, title, note = build_answerer(args.config)
    app = create_app(answerer, title=title, note=note)
    print(f"serving on http://{args.host}:{args.port}/", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
