"""`ragkit serve`: the chat web page, or with ``--api`` the OpenAI-compatible API (``ragkit.apps.api_cli``); needs
the 'web' extra. Plugged into the CLI by an entry point.

Listening beyond loopback needs a token (``--token-env``, default ``RAGKIT_API_TOKEN``) and prints a warning; exit
codes as for every command (docs/reliability.md): 1 when the token is missing or too weak, 2 for a bad option.
"""

from __future__ import annotations

import argparse
import os
import sys

from ragkit.apps.api_cli import add_api_arguments, run_api
from ragkit.apps.api_guard import is_loopback


def _count(limit: int, low: int = 1):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not low <= value <= limit:
            raise argparse.ArgumentTypeError(f"expected a number from {low} to {limit}, got {value}")
        return value

    return parse


def add_parsers(sub) -> None:
    p = sub.add_parser("serve", help="serve the chat web page, or with --api an OpenAI-compatible API ('web' extra)")
    p.add_argument("--config", help="pipeline YAML; with a 'catalog' section the product bot answers")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_count(65535, 0), default=8000, help="port (default 8000)")
    p.add_argument("--max-concurrent", type=_count(64), default=2, help="web page: answers generated at once (2)")
    p.add_argument(
        "--max-queued",
        type=_count(1024, 0),
        default=8,
        help="web page: questions waiting beyond those; more get 429 (8)",
    )
    add_api_arguments(p)  # --api, --token-env and the API's own limits
    p.set_defaults(func=run_serve)


def run_serve(args) -> int:
    if not is_loopback(args.host) and os.environ.get(args.token_env, "").strip():
        print(
            f"warning: listening on {args.host}:{args.port}, reachable beyond this machine; every request needs the "
            f"token in ${args.token_env}, and traffic is plain HTTP: put a TLS proxy in front for anything but a "
            "trusted network",
            file=sys.stderr,
        )
    if args.api:
        return run_api(args)
    try:
        import uvicorn
    except ImportError:
        print("error: ragkit serve needs uvicorn: pip install 'ragkit[web]'", file=sys.stderr)
        return 1
    from ragkit.apps.api_guard import token_from_env
    from ragkit.apps.web import create_app
    from ragkit.config import load_pipeline
    from ragkit.pipeline import build_app

    # Refused beyond loopback without a token (ConfigError: exit 1); on loopback a token is used when set.
    token = token_from_env(args.token_env, args.host)
    if token is not None:
        from ragkit.apps.web_guard import TokenCheck

        TokenCheck(token)  # a weak token is refused before the model loads
    app = build_app(load_pipeline(args.config))
    web = create_app(
        app.answerer,
        title=app.title,
        note=app.note,
        token=token,
        max_concurrent=args.max_concurrent,
        max_queued=args.max_queued,
    )
    where = f"http://{args.host}:{args.port}/"
    login = f" (browsers open {where}?token=<the token in ${args.token_env}> once)" if token else ""
    print(f"serving on {where}{login}", file=sys.stderr)
    uvicorn.run(web, host=args.host, port=args.port, log_level="warning")
    return 0
