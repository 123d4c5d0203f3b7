"""One writer per index, any number of readers: a second writer waits for the first (up to ``--wait``, then exit 75
naming the holder); a search, or a long-running reader such as ``ragkit serve``, neither blocks nor crashes while a
writer runs, and reads the index as the last finished run left it. Processes are real; so are the engine's files.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest
from ingest_cli import cli, doc_ids, index, index_json, pipeline, search

from ragkit.errors import RagkitError
from ragkit.ingest.lock import FileLock, IndexBusy, describe_holder, index_lock
from ragkit.pipeline import RAG


def hold(path, seconds: float, what: str = "ragkit index") -> subprocess.Popen:
    """A process that holds the lock file ``path`` for ``seconds``; returns once it holds it."""
    script = textwrap.dedent(f"""
        import sys, time
        from ragkit.ingest.lock import FileLock
        lock = FileLock({str(path)!r}, what={what!r})
        lock.acquire(10)
        print("held", flush=True)
        time.sleep({seconds})
        lock.release()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "labo.md").write_text("# LABO-288\n\nA laboratory refrigerator with 288 litres.\n")
    (folder / "ult.md").write_text("# POLAR-ULT-500\n\nAn ultra-low freezer reaching -86 degrees.\n")
    return folder


def test_a_writer_that_finds_the_index_busy_waits_then_names_the_holder(tmp_path, docs, capsys):
    config = pipeline(tmp_path)
    holder = hold(tmp_path / "index" / "index.lock", 60)
    try:
        t0 = time.monotonic()
        code, _, err = index(capsys, str(docs), "--config", config, "--wait", "1")
        assert code == 75 and time.monotonic() - t0 >= 1
        assert f"pid {holder.pid} (ragkit index)" in err and "--wait" in err
    finally:
        holder.kill()
        holder.wait()
    assert index_json(capsys, str(docs), "--config", config)["docs_indexed"] == 2  # the kernel let go of it


def test_a_writer_waits_for_the_one_before_it_to_finish(tmp_path, docs, capsys):
    holder = hold(tmp_path / "index" / "index.lock", 2)
    report = index_json(capsys, str(docs), "--config", pipeline(tmp_path), "--wait", "60")
    assert report["docs_indexed"] == 2 and holder.wait(30) == 0


def test_two_indexers_started_together_both_finish(tmp_path, docs):
    other = tmp_path / "more"
    other.mkdir()
    (other / "vax.md").write_text("# KN-VAX-98\n\nA vaccine refrigerator with an SMS alarm.\n")
    config = pipeline(tmp_path)
    runs = [cli(["index", str(folder), "--config", config], tmp_path, wait=False) for folder in (docs, other)]
    for run in runs:
        _, err = run.communicate(timeout=600)
        assert run.returncode == 0, err
        assert "Traceback" not in err and "WouldBlock" not in err
    assert len(doc_ids(tmp_path / "index")) == 3


WRITER = """
import asyncio, sys
from ragkit.providers.qdrant_edge import QdrantEdgeStore
def chunk(cid, text):
    return {"doc_id": "extra", "chunk_id": cid, "text": text, "start": 0, "end": len(text)}
async def main():
    store = QdrantEdgeStore(QdrantEdgeStore.Config(path=sys.argv[1]))
    await store.ensure_collection(384)
    vec = [1.0] + [0.0] * 383
    await store.upsert(["extra-1"], [vec], [chunk("extra-1", "written while readers read")])
    print("writing", flush=True)
    sys.stdin.readline()  # hold the live shard until the test has searched
    await store.upsert(["extra-2"], [vec], [chunk("extra-2", "second write")])
    await store.close()
    print("done", flush=True)
asyncio.run(main())
"""


def test_searches_while_a_writer_holds_the_store_read_the_last_finished_run(tmp_path, docs, capsys):
    config = pipeline(tmp_path)
    index_json(capsys, str(docs), "--config", config)
    store = tmp_path / "index" / "store"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(store)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout.readline().strip() == "writing"
    for _ in range(2):
        hits = search(capsys, config, "laboratory refrigerator")
        assert {h["doc_id"].rsplit("/", 1)[1] for h in hits} == {"labo.md", "ult.md"}  # not the unfinished write
    other = cli(["search", "ultra-low freezer", "--config", config, "--json"], tmp_path)
    assert other.returncode == 0 and "Traceback" not in other.stderr and "ult.md" in other.stdout
    out, err = writer.communicate("go\n", timeout=120)
    assert writer.returncode == 0 and "done" in out, err  # the writer's files were not disturbed
    texts = {h["text"] for h in search(capsys, config, "written while readers read")}
    assert {"written while readers read", "second write"} <= texts  # published when it finished


def test_a_long_running_reader_does_not_block_writers_and_sees_their_runs(tmp_path, docs, capsys):
    config = pipeline(tmp_path)
    index_json(capsys, str(docs), "--config", config)
    reader = RAG.from_yaml(config)  # as `ragkit serve` does: one RAG, open for as long as the server runs
    assert {h.chunk.doc_id.rsplit("/", 1)[1] for h in reader.search("refrigerator")} == {"labo.md", "ult.md"}
    (docs / "vax.md").write_text("# KN-VAX-98\n\nA vaccine refrigerator with an SMS alarm.\n")
    run = cli(["index", str(docs), "--config", config, "--wait", "5"], tmp_path)
    assert run.returncode == 0, run.stderr
    found = {h.chunk.doc_id.rsplit("/", 1)[1] for h in reader.search("vaccine refrigerator SMS alarm", top_k=10)}
    assert "vax.md" in found  # the reader moved to the newly published copy at its next search
    from ragkit._aio import run_sync

    run_sync(reader.aclose())


def test_a_second_store_object_on_the_same_directory_waits_for_the_first(tmp_path):
    from ragkit._aio import run_sync
    from ragkit.providers.qdrant_edge import QdrantEdgeStore

    path = str(tmp_path / "store")
    first = QdrantEdgeStore(QdrantEdgeStore.Config(path=path))
    run_sync(first.ensure_collection(4))
    second = QdrantEdgeStore(QdrantEdgeStore.Config(path=path, lock_timeout_s=0.3))
    with pytest.raises(IndexBusy, match=f"pid {os.getpid()}"):
        run_sync(second.ensure_collection(4))
    run_sync(first.upsert(["a"], [[1.0, 0, 0, 0]], [{"doc_id": "d"}]))
    run_sync(first.close())  # publishes, lets go
    run_sync(second.ensure_collection(4))
    assert run_sync(second.count()) == 1
    run_sync(second.close())


def test_lock_holder_descriptions_and_reentry(tmp_path):
    assert "has not said" in describe_holder("") and "has not said" in describe_holder("{broken")
    outer = index_lock(tmp_path)
    outer.acquire(1)
    inner = index_lock(tmp_path)  # the same process takes the index lock again: the command line, then the indexer
    inner.acquire(0)
    inner.release()
    plain = FileLock(tmp_path / "index.lock")
    assert not plain.try_acquire()  # another lock object on the same file is another holder
    outer.release()
    assert plain.try_acquire()
    plain.release()
    assert issubclass(IndexBusy, RagkitError)
