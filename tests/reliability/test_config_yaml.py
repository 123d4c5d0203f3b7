"""Pipeline YAML a new user might write: every mistake is a problem with its key path and line, in words about the
YAML (not about pydantic), found before anything is built — a bad file never half-applies.
"""

from __future__ import annotations

import textwrap
import time
import tracemalloc
from pathlib import Path

import pytest

from ragkit.cli import main
from ragkit.config import ConfigValidationError, load_pipeline
from ragkit.errors import ConfigError
from ragkit.yaml_source import MAX_DEPTH, MAX_NODES


def write(tmp_path: Path, text: str, name: str = "pipeline.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems(path: Path) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ConfigValidationError) as caught:
        load_pipeline(path)
    return [(p.line, p.path, p.message) for p in caught.value.problems]


def validate(path: Path, capsys) -> tuple[int, str]:
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out + err


# ------------------------------------------------------------------------------------------ duplicate keys


DUPLICATES = [
    ("nested", "retrieval:\n  top_k: 3\n  top_k: 4\n", 3, "retrieval.top_k", 2),
    ("top-level", "retrieval:\n  top_k: 3\nbudget: {}\nretrieval:\n  top_k: 9\n", 4, "retrieval", 1),
    (
        "generator",
        "generators:\n  local:\n    type: llamacpp\n  local:\n    type: llamacpp\n    n_ctx: 4096\n",
        4,
        "generators.local",
        2,
    ),
    ("flow-mapping", "retrieval: {top_k: 3, top_k: 4}\n", 1, "retrieval.top_k", 1),
]


@pytest.mark.parametrize(("case", "text", "line", "path", "first"), DUPLICATES, ids=[d[0] for d in DUPLICATES])
def test_a_duplicate_key_is_a_problem_with_both_lines(tmp_path, capsys, case, text, line, path, first):
    file = write(tmp_path, text)
    assert problems(file) == [(line, path, f"duplicate key {path.rsplit('.', 1)[-1]!r} (first at line {first})")]
    code, output = validate(file, capsys)
    assert code == 1 and f"{file}:{line}: {path}: duplicate key" in output


def test_a_merge_key_may_override_what_it_merges(tmp_path):
    file = write(
        tmp_path,
        """\
        generators:
          small: &local
            type: llamacpp
            n_ctx: 2048
          large:
            <<: *local
            n_ctx: 4096
        default_generator: small
        """,
    )
    config = load_pipeline(file)
    assert config.generators["large"].config.n_ctx == 4096 and config.generators["small"].config.n_ctx == 2048


# ------------------------------------------------------------------------------------------ anchors and nesting


def bomb(levels: int) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [8, 9, 12], ids=["8-lines", "one-level-deeper", "twelve"])
def test_an_alias_bomb_is_refused_quickly_in_bounded_memory(tmp_path, capsys, levels):
    file = write(tmp_path, bomb(levels))
    tracemalloc.start()
    started = time.monotonic()
    try:
        found = problems(file)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.monotonic() - started < 10
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert len(found) == 1 and f"more than {MAX_NODES} nodes" in found[0][2] and found[0][0] is not None
    code, output = validate(file, capsys)
    assert code == 1 and "MemoryError" not in output


@pytest.mark.parametrize("depth", [MAX_DEPTH + 5, 5_000, 50_000])
def test_deep_nesting_is_refused_without_a_recursion_error(tmp_path, capsys, depth):
    file = write(tmp_path, "retrieval: " + "[" * depth + "]" * depth + "\n")
    found = problems(file)
    assert len(found) == 1 and "nested more than" in found[0][2]
    code, output = validate(file, capsys)
    assert code == 1 and "RecursionError" not in output


def test_deep_block_mappings_are_refused_too(tmp_path):
    text = "".join("  " * i + f"k{i}:\n" for i in range(2_000)) + "  " * 2_000 + "v\n"
    assert "nested more than" in problems(write(tmp_path, text))[0][2]


# ------------------------------------------------------------------------------------------ wrong types


WRONG_TYPES = [
    ("n_ctx-yes", "generators:\n  local:\n    type: llamacpp\n    n_ctx: yes\n", 4, "boolean true"),
    ("top_k-no", "retrieval:\n  top_k: no\n", 2, "boolean false"),
    ("temperature-on", "generators:\n  g:\n    type: ollama\n    model: m\n    temperature: on\n", 5, "boolean true"),
    ("deadline-nan", "retry:\n  deadline_s: .nan\n", 2, "NaN"),
    ("top_k-words", "retrieval:\n  top_k: five\n", 2, "valid integer"),
    ("top_k-fraction", "retrieval:\n  top_k: 2.5\n", 2, "fractional"),
    ("section-scalar", "retrieval: 5\n", 1, "expected a mapping of settings, got a number"),
    ("section-list", "budget: [1, 2]\n", 1, "expected a mapping of settings, got a list"),
    ("section-string", "retry: fast\n", 1, "expected a mapping of settings, got a string"),
    ("component-string", "chunker: recursive\n", 1, "expected a mapping with a 'type' key"),
    ("component-no-type", "chunker:\n  size: 3\n", 1, "missing 'type'"),
    ("unknown-type", "chunker:\n  type: magic\n", 2, "magic"),
    ("generators-list", "generators: [a, b]\n", 1, "expected a mapping of name"),
    ("default-generator-list", "default_generator: [a]\n", 1, "expected a generator name"),
    ("index-dir-list", "index_dir: [a]\n", 1, "expected a directory path string"),
    ("list-as-key", "? [a, b]\n: 1\n", 1, "a list is used as a key"),
    ("typo", "retrieval:\n  top_kk: 3\n", 2, "unknown key"),
    ("unknown-section", "retreival:\n  top_k: 3\n", 1, "unknown section"),
    ("model-number", "generators:\n  g:\n    type: ollama\n    model: 4\n", 4, "valid string"),
    (
        "base-url-no-scheme",
        "generators:\n  g:\n    type: openai\n    model: gpt-4o\n    base_url: localhost:8080/v1\n",
        5,
        "http:// or https:// URL",
    ),
    ("not-a-mapping", "- just\n- a list\n", 1, "expected a mapping of pipeline sections"),
    ("python-tag", "retrieval: !!python/object:os.system {}\n", 1, "python/object"),
    ("two-documents", "retrieval: {}\n---\nbudget: {}\n", 2, "another document"),
    ("tab-indent", "retrieval:\n\ttop_k: 3\n", 2, "'\\t'"),
]


@pytest.mark.parametrize(("case", "text", "line", "says"), WRONG_TYPES, ids=[w[0] for w in WRONG_TYPES])
def test_a_wrong_type_gets_a_message_about_the_yaml(tmp_path, capsys, case, text, line, says):
    file = write(tmp_path, text)
    found = problems(file)
    assert any(says in message and got == line for got, _, message in found), found
    assert not any("Value error" in m or "instance of" in m or "≥" in m for _, _, m in found), found
    code, output = validate(file, capsys)
    assert code == 1 and says in output


def test_n_ctx_yes_does_not_talk_about_the_lower_bound(tmp_path):
    text = "generators:\n  local:\n    type: llamacpp\n    n_ctx: yes\n"
    [(line, path, message)] = problems(write(tmp_path, text))
    assert path == "generators.local.n_ctx" and "greater" not in message and "64" not in message


def test_every_problem_of_a_file_is_listed_at_once(tmp_path):
    text = "retrieval:\n  top_k: 0\n  candidates: lots\nbudget: 5\nchunker: recursive\n"
    lines = sorted(line for line, _, _ in problems(write(tmp_path, text)))
    assert lines == [2, 3, 4, 5]


def test_a_file_that_is_not_utf8_names_the_byte(tmp_path):
    file = tmp_path / "latin1.yaml"
    file.write_bytes("retrieval:\n  top_k: 3 # größer\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_pipeline(file)


# ------------------------------------------------------------------------------------------ nothing half-applied


def test_a_bad_file_builds_nothing_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    index = tmp_path / "fresh-index"
    file = write(tmp_path, f"index_dir: {index}\nretrieval:\n  top_k: 4\nbudget:\n  reserved_output_tokens: lots\n")
    with pytest.raises(ConfigValidationError):
        load_pipeline(file)
    assert main(["ask", "What does LABO-288 cost?", "--config", str(file)]) == 1
    assert "reserved_output_tokens" in capsys.readouterr().err
    assert not index.exists() and not (tmp_path / ".ragkit").exists()
