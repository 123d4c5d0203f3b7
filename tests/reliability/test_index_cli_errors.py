"""`ragkit index`, `search` and `eval`: every user mistake is one message and a documented exit code (2 for a bad
command line, 1 for an error that stopped the command), never a traceback, never a silent default; searching with
no index says so and creates nothing; a chunk size the embedder would cut is a configuration error."""

from __future__ import annotations

import json

import pytest
from ingest_cli import cli, index, index_json, pipeline

from ragkit.cli import main


def usage_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["search", "x", "--filter", "{bad"], "--filter: not valid JSON"),
        (["search", "x", "--filter", "[1, 2]"], "expected a JSON object"),
        (["search", "x", "--filter", '{"price": {"near": 3}}'], "unknown operator 'near'"),
        (["search", "x", "--filter", '{"price": {"lt": "cheap"}}'], "needs a finite number"),
        (["search", "x", "--top-k", "0"], "--top-k: expected a number from 1 to 10000, got 0"),
        (["search", "x", "--top-k", "-1"], "--top-k: expected a number from 1 to 10000, got -1"),
        (["search", "x", "--top-k", "ten"], "--top-k: expected a whole number"),
        (["index", "docs", "--wait", "-1"], "--wait: expected 0 to 86400 seconds"),
        (["eval", "--qa", "q.jsonl", "--limit", "0"], "--limit: expected a number from 1"),
    ],
)
def test_a_bad_option_value_is_exit_2_with_its_name(capsys, argv, says):
    assert says in usage_error(capsys, argv)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["eval", "--qa", "/no/such/qa.jsonl"], "--qa /no/such/qa.jsonl: no such file"),
        (["eval", "--dataset", "/no/such/beir"], "--dataset /no/such/beir: no such directory"),
        (["eval"], "give exactly one of --dataset"),
        (["eval", "--qa", "{here}", "--corpus", "/no/such/corpus"], "--corpus /no/such/corpus: no such file"),
        (["index", "/no/such/folder"], "/no/such/folder: no such file or directory"),
        (["index", "{here}"], "unsupported file type"),
    ],
)
def test_a_missing_or_wrong_path_is_exit_2_with_the_path(tmp_path, capsys, argv, says):
    here = tmp_path / "data.png"
    here.write_bytes(b"\x89PNG")
    assert main([a.replace("{here}", str(here)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


@pytest.mark.parametrize("command", [["search", "freezer"], ["ask", "Which freezer reaches -86 °C?"]])
def test_searching_or_asking_without_an_index_says_so_and_creates_nothing(tmp_path, capsys, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    assert main(command) == 1
    err = capsys.readouterr().err
    assert "error: no index in .ragkit: index documents first" in err
    assert "ensure_collection" not in err and "Traceback" not in err
    assert not (tmp_path / ".ragkit").exists()


def test_an_index_folder_that_is_a_file_is_one_error_line(tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("text")
    (tmp_path / "index").write_text("not a folder")
    code, _, err = index(capsys, str(tmp_path / "docs"), "--config", pipeline(tmp_path))
    assert code == 1 and err.count("error:") == 1


def test_a_chunk_size_above_what_the_embedder_reads_is_a_config_error(tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("A laboratory refrigerator with 288 litres.")
    config = pipeline(tmp_path, "chunker:\n  type: recursive\n  max_tokens: 512\n")
    code, _, err = index(capsys, str(tmp_path / "docs"), "--config", config)
    assert code == 1
    assert "chunker.max_tokens is 512" in err and "at most 256 tokens" in err
    ok = pipeline(tmp_path, "chunker:\n  type: recursive\n  max_tokens: 256\n")
    assert index_json(capsys, str(tmp_path / "docs"), "--config", ok)["docs_indexed"] == 1


def test_an_unknown_encoding_is_one_error_line(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("text")
    code, _, err = index(capsys, str(tmp_path / "a.txt"), "--config", pipeline(tmp_path), "--encoding", "klingon")
    assert code == 1 and "unknown encoding: klingon" in err


def test_search_on_an_empty_index_and_with_a_filter_that_matches_nothing(tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    config = pipeline(tmp_path)
    code, out, err = index(capsys, str(tmp_path / "docs"), "--config", config)
    assert code == 0 and "indexed 0 documents" in out and "warning: no document files (.txt, .md" in err
    assert main(["search", "anything", "--config", config]) == 0
    assert "no results (the index is empty)" in capsys.readouterr().out


def test_the_installed_command_exits_with_the_documented_codes(tmp_path):
    bad = cli(["search", "x", "--filter", "{bad"], tmp_path, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "--filter" in bad.stderr
    none = cli(["search", "x"], tmp_path, timeout=300)
    assert none.returncode == 1 and none.stderr.strip() == (
        "error: no index in .ragkit: index documents first (ragkit index PATH…)"
    )
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"id": 1, "text": "good"}) + "\n{bad\n")
    partial = cli(["index", str(rows)], tmp_path, timeout=300)
    assert partial.returncode == 3 and f"{rows}:2: not valid JSON" in partial.stderr
