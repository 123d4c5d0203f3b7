"""`ragkit serve`: the chat web page (needs the 'web' extra). Plugged into the CLI by an entry point.

Listening beyond loopback needs ``--token-env`` (a variable holding a long random token) and prints a warning;
exit codes as for every command (docs/reliability.md), 2 for a host beyond loopback without a token.
"""

from __future__ import annotations

import argparse
import sys

from ragkit.apps.web_guard import is_loopback


def _positive(limit: int, low: int = 1):
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
    p = sub.add_parser("serve", help="serve the chat web page (needs the 'web' extra)")
    p.add_argument("--config", help="pipeline YAML; with a 'catalog' section the product bot answers")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_positive(65535, 0), default=8000, help="port (default 8000)")
    p.add_argument(
        "--token-env",
        metavar="VAR",
        help="environment variable holding an access token (16+ characters); required beyond loopback. "
        "Browsers open /?token=TOKEN once; API clients send 'Authorization: Bearer TOKEN'",
    )
    p.add_argument("--max-concurrent", type=_positive(64), default=2, help="answers generated at once (default 2)")
    p.add_argument(
        "--max-queued", type=_positive(1024, 0), default=8, help="questions waiting beyond those; more get 429 (8)"
    )
    p.set_defaults(func=run_serve)


def run_serve(args) -> int:
    try:
        import uvicorn
    except ImportError:
        print("error: ragkit serve needs uvicorn: pip install 'ragkit[web]'", file=sys.stderr)
        return 1
    from ragkit.apps.web import create_app
    from ragkit.component import secret_from_env
    from ragkit.config import load_pipeline
    from ragkit.pipeline import build_app

    local = is_loopback(args.host)
    if not local and not args.token_env:
        print(
            f"error: refusing to listen on {args.host}, beyond this machine, without a token: anyone who can reach "
            "it could use the model. Set --token-env VAR (VAR holding a long random token) or use --host 127.0.0.1",
            file=sys.stderr,
        )
        return 2
    token = secret_from_env(args.token_env, what="web access token") if args.token_env else None
    app = build_app(load_pipeline(args.config))
    web = create_app(
        app.answerer,
        title=app.title,
        note=app.note,
        token=token,
        max_concurrent=args.max_concurrent,
        max_queued=args.max_queued,
    )
    if not local:
        print(
            f"warning: listening on {args.host}:{args.port}, reachable beyond this machine; every request needs the "
            "token, and traffic is plain HTTP: put a TLS proxy in front for anything but a trusted network",
            file=sys.stderr,
        )
    where = f"http://{args.host}:{args.port}/"
    print(
        f"serving on {where}" + (f" (open {where}?token=<the token in ${args.token_env}>)" if token else ""),
        file=sys.stderr,
    )
    uvicorn.run(web, host=args.host, port=args.port, log_level="warning")
    return 0
