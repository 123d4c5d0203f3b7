"""CLI subcommands, one module per group; each exposes ``add_parsers(subparsers)``."""
