"""The ``ragkit`` command line. Each command group lives in ``ragkit.commands``; this module only dispatches."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ragkit import registry
from ragkit.errors import RagkitError

# Command-group modules; each defines add_parsers(subparsers) and sets a ``func`` default per command.
COMMAND_MODULES: list[str] = [
    "ragkit.commands.retrieval",
    "ragkit.commands.answer",
    "ragkit.commands.models",
    "ragkit.commands.route",
    "ragkit.commands.chat",
]  # apps add theirs through the entry-point group "ragkit.commands"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ragkit", description="Retrieval-augmented generation, offline by default.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES + registry.command_modules():
        importlib.import_module(name).add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except RagkitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
