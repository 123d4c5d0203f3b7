"""`ragkit serve`: the chat web page (needs the 'web' extra). Plugged into the CLI by an entry point."""

from __future__ import annotations

import sys

from ragkit.apps.api_cli import add_api_arguments, run_api


def add_parsers(sub) -> None:
    p = sub.add_parser("serve", help="serve the chat web page, or with --api an OpenAI-compatible API ('web' extra)")
    p.add_argument("--config", help="pipeline YAML; with a 'catalog' section the product bot answers")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    add_api_arguments(p)
    p.set_defaults(func=run_serve)


def run_serve(args) -> int:
    if args.api:
        return run_api(args)
    try:
        import uvicorn
    except ImportError:
        print("error: ragkit serve needs uvicorn: pip install 'ragkit[web]'", file=sys.stderr)
        return 1
    from ragkit.apps.web import create_app
    from ragkit.config import load_pipeline
    from ragkit.pipeline import build_app

    app = build_app(load_pipeline(args.config))
    web = create_app(app.answerer, title=app.title, note=app.note)
    print(f"serving on http://{args.host}:{args.port}/", file=sys.stderr)
    uvicorn.run(web, host=args.host, port=args.port, log_level="warning")
    return 0
