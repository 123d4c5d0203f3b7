"""The ``ragkit`` command line. Each command group lives in ``ragkit.commands``; this module only dispatches.

Exit codes (every command; docs/reliability.md lists each command's own): 0 done; 1 an error stopped the command
(configuration, data, a provider, I/O), printed as one ``error:`` line on stderr; 2 the command line is wrong;
70 an internal error (a bug in ragkit: one line, the traceback with ``-vv``); 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ragkit import registry
from ragkit.component import SecretFilter, scrub
from ragkit.errors import RagkitError

log = logging.getLogger("ragkit.cli")

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70  # EX_SOFTWARE
EXIT_INTERRUPTED = 130

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


def _error(message: str) -> None:
    # Secrets this process read (API keys) are taken out of anything a server or library put in the message.
    print(f"error: {scrub(message)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, SecretFilter) for f in handler.filters):
            handler.addFilter(SecretFilter())
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except RagkitError as e:
        _error(str(e))
        return EXIT_ERROR
    except OSError as e:
        # A path that is a directory, no permission, a full disk: the system's words and the path.
        where = f": {e.filename}" if getattr(e, "filename", None) else ""
        _error(f"{e.strerror or e}{where}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # a bug: one line for the user, the traceback for whoever debugs it
        log.debug("internal error", exc_info=True)
        _error(
            f"internal error ({type(e).__name__}: {e}); this is a bug in ragkit, please report it "
            "(rerun with -vv for the traceback)"
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
