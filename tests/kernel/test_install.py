"""A fresh non-editable install exposes every public module; `import ragkit` loads no vendor SDK."""

import json
import subprocess
import sys

from paths import ROOT

VENDOR_SDKS = [
    "openai",
    "anthropic",
    "google.genai",
    "ollama",
    "llama_cpp",
    "sentence_transformers",
    "torch",
    "qdrant_client",
]


def test_import_ragkit_loads_no_vendor_sdk():
    code = "import sys, ragkit, ragkit.config, ragkit.registry; print(__import__('json').dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT / "tests")
    loaded = set(json.loads(out.stdout))
    assert not [m for m in VENDOR_SDKS if m in loaded]


def test_non_editable_install_exposes_providers(tmp_path):
    target = tmp_path / "site"
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    assert (target / "ragkit" / "providers" / "openai.py").exists()
    code = (
        "import importlib, ragkit, ragkit.providers as p; "
        "assert p.__file__.startswith(%r), p.__file__; "
        "[importlib.import_module('ragkit.providers.' + m) for m in "
        "('openai', 'anthropic', 'gemini', 'ollama', 'llamacpp', "
        "'qdrant_edge', 'qdrant_server', 'sentence_transformers')]; "
        "import ragkit.cli; ragkit.cli.build_parser(); print('ok')"
    ) % str(target)
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
