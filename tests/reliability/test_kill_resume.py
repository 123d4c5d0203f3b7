"""`ragkit index` killed with SIGKILL in the middle of a run, then run again: the index ends exactly as one
uninterrupted run leaves it, with no chunk twice and none missing (the in-process variants, including a document
changed between the kill and the rerun, are in tests/ingest/test_indexing.py)."""

from __future__ import annotations

import json
import signal
import sqlite3
import time

from ingest_cli import cli, pipeline, stored_chunks

from ragkit.ingest.chunking import RecursiveChunker
from ragkit.ingest.loaders import load_path
from ragkit.providers.minilm_onnx import locate_model_files
from ragkit.tokens import HFTokenCounter


def recorded(index_dir) -> dict[str, list[str]]:
    """doc id -> chunk ids, read from the manifest without its lock (as a bystander)."""
    path = index_dir / "manifest.sqlite"
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {d: list(json.loads(c)) for d, c in db.execute("SELECT doc_id, chunks FROM docs")}
    except sqlite3.OperationalError:  # not created yet
        return {}
    finally:
        db.close()


def test_a_killed_run_resumed_loses_and_duplicates_nothing(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(700):
        (docs / f"d{i:03}.txt").write_text(f"Document {i}: the freezer model F-{i} keeps samples at -{i % 90} C.\n")
    config = pipeline(tmp_path)
    index_dir = tmp_path / "index"
    run = cli(["index", str(docs), "--config", config], tmp_path, wait=False)
    deadline = time.monotonic() + 600
    while not recorded(index_dir) and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    killed = run.poll() is None
    run.send_signal(signal.SIGKILL)
    run.wait()
    if killed:
        assert 0 < len(recorded(index_dir)) < 700  # it really stopped part way
    again = cli(["index", str(docs), "--config", config], tmp_path, timeout=900)
    assert again.returncode == 0, again.stderr

    counter = HFTokenCounter.from_file(locate_model_files().tokenizer)
    chunker = RecursiveChunker(256, counter=counter)
    expected = {c.id for d in load_path(docs) for c in chunker.chunk(d)}
    manifest = recorded(index_dir)
    assert len(manifest) == 700
    assert {c for ids in manifest.values() for c in ids} == expected
    stored = [p["chunk_id"] for p in stored_chunks(index_dir / "store")]
    assert len(stored) == len(set(stored)) == len(expected)
    assert set(stored) == expected
