"""`ragkit serve --api`: the OpenAI-compatible API's command-line options and its start (``ragkit.apps.api``)."""

from __future__ import annotations

import sys
from typing import Any

from ragkit.apps.api_guard import DEFAULT_TOKEN_ENV


def add_api_arguments(p: Any) -> None:
    """The ``--api`` options of ``ragkit serve``."""
    p.add_argument(
        "--api",
        action="store_true",
        help="serve the OpenAI-compatible API (/v1/chat/completions, /v1/models, /v1/search, /healthz)",
    )
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=PIPELINE.yaml",
        help="with --api: serve this pipeline as model NAME (repeat for several); default: --config, named after "
        "its file ('ragkit' for the embedded defaults)",
    )
    p.add_argument(
        "--token-env",
        default=DEFAULT_TOKEN_ENV,
        metavar="VAR",
        help=f"with --api: environment variable holding the bearer token (default {DEFAULT_TOKEN_ENV}); "
        "required when --host is not a loopback address",
    )
    p.add_argument("--concurrency", type=int, default=4, help="with --api: chat answers computed at once (default 4)")
    p.add_argument("--queue", type=int, default=16, help="with --api: chat requests waiting before 429 (default 16)")
    p.add_argument(
        "--max-body-bytes", type=int, default=1 << 20, help="with --api: largest request body (default 1 MiB)"
    )
    p.add_argument(
        "--history-tokens", type=int, default=2048, help="with --api: tokens of earlier turns kept (default 2048)"
    )


def run_api(args: Any) -> int:
    try:
        import uvicorn
    except ImportError:
        print("error: ragkit serve --api needs uvicorn: pip install 'ragkit[web]'", file=sys.stderr)
        return 1
    from ragkit.apps.api import ApiSettings, create_api, model_specs, served_models
    from ragkit.apps.api_guard import token_from_env

    for name in ("concurrency", "max_body_bytes", "history_tokens"):
        if getattr(args, name) < 1:
            print(f"error: --{name.replace('_', '-')} must be at least 1", file=sys.stderr)
            return 2
    if args.queue < 0:
        print("error: --queue must be 0 or more", file=sys.stderr)
        return 2
    token = token_from_env(args.token_env, args.host)
    models = served_models(model_specs(args.model, args.config))
    settings = ApiSettings(
        token=token,
        max_body_bytes=args.max_body_bytes,
        chat_active=args.concurrency,
        chat_waiting=args.queue,
        history_tokens=args.history_tokens,
    )
    app = create_api(models, settings)
    auth = f"bearer token from ${args.token_env}" if token else "no token (loopback only)"
    names = ", ".join(m.name for m in models)
    print(f"OpenAI-compatible API on http://{args.host}:{args.port}/v1 (models: {names}; {auth})", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


__all__ = ["add_api_arguments", "run_api"]
