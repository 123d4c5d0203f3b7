"""Helpers for the ingest reliability tests: a pipeline file per test, the CLI in-process or as its own process,
and what the index holds, read back through a fresh store (as another process would see it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ragkit.cli import main


def pipeline(tmp: Path, extra: str = "") -> str:
    """A pipeline file whose index lives in ``tmp/index`` (embedded defaults otherwise)."""
    path = tmp / "pipeline.yaml"
    path.write_text(f"index_dir: {tmp / 'index'}\n{extra}", encoding="utf-8")
    return str(path)


def index(capsys, *argv: str) -> tuple[int, str, str]:
    """``ragkit index ...`` in this process: exit code, stdout, stderr."""
    code = main(["index", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


def index_json(capsys, *argv: str) -> dict:
    code, out, err = index(capsys, *argv, "--json")
    assert code in (0, 3), err
    return json.loads(out.strip().splitlines()[-1])


def search(capsys, config: str, query: str, *more: str) -> list[dict]:
    assert main(["search", query, "--config", config, "--json", "--top-k", "50", *more]) == 0
    return json.loads(capsys.readouterr().out)


def doc_ids(index_dir: Path) -> set[str]:
    """The documents the manifest records, read as a bystander would (no lock, read-only)."""
    import sqlite3

    db = sqlite3.connect(f"file:{index_dir / 'manifest.sqlite'}?mode=ro", uri=True)
    try:
        return {r[0] for r in db.execute("SELECT doc_id FROM docs")}
    finally:
        db.close()


def stored_chunks(store_dir: Path) -> list[dict]:
    """Every payload in the published store, read by a store object of its own."""
    from ragkit._aio import run_sync
    from ragkit.providers.qdrant_edge import QdrantEdgeStore

    store = QdrantEdgeStore(QdrantEdgeStore.Config(path=str(store_dir)))
    try:
        shard = store._ready()  # noqa: SLF001 - the published copy, as a reader sees it
        qe = store._qe  # noqa: SLF001
        out, offset = [], None
        while True:
            records, offset = shard.scroll(qe.ScrollRequest(offset=offset, limit=1000, with_payload=True))
            out.extend(dict(r.payload) for r in records)
            if offset is None:
                return out
    finally:
        run_sync(store.close())


def cli(args: list[str], cwd: Path, timeout: float = 300, **kwargs) -> subprocess.Popen | subprocess.CompletedProcess:
    """``ragkit ARGS`` as a process of its own (``wait=False`` returns the running Popen)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "ragkit.cli", *args]
    if kwargs.pop("wait", True) is False:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, **kwargs)
