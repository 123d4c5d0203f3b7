"""Document identity: two folders' files never share an id, a run never drops one of them, pruning stays inside the
paths it is given, a duplicate id is an error a person sees, and an index of the first id scheme is migrated.

Every run is the real `ragkit index` (MiniLM ONNX, Qdrant edge) in this process; the index is read back through a
store object of its own, as another process would.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from ingest_cli import doc_ids, index, index_json, pipeline, search, stored_chunks

from ragkit.ingest.doc_ids import file_id


@pytest.fixture
def two_folders(tmp_path):
    a, b = tmp_path / "A", tmp_path / "B"
    a.mkdir()
    b.mkdir()
    (a / "notes.txt").write_text("Alpha notes: the ULT-500 freezer reaches -86 degrees.\n")
    (b / "notes.txt").write_text("Beta notes: the LABO-288 fridge holds 288 litres.\n")
    (b / "other.md").write_text("# Other\n\nA vaccine refrigerator with an SMS alarm.\n")
    return tmp_path, a, b


def test_same_file_name_in_two_folders_indexed_one_after_the_other_keeps_both(two_folders, capsys):
    tmp, a, b = two_folders
    config = pipeline(tmp)
    assert index_json(capsys, str(a), "--config", config)["docs_indexed"] == 1
    second = index_json(capsys, str(b), "--config", config)
    assert second["docs_indexed"] == 2 and second["chunks_deleted"] == 0
    texts = {p["text"] for p in stored_chunks(tmp / "index" / "store")}
    assert any("Alpha notes" in t for t in texts) and any("Beta notes" in t for t in texts)
    assert doc_ids(tmp / "index") == {file_id(a / "notes.txt"), file_id(b / "notes.txt"), file_id(b / "other.md")}


def test_two_folders_in_one_run_are_both_indexed(two_folders, capsys):
    tmp, a, b = two_folders
    report = index_json(capsys, str(a), str(b), "--config", pipeline(tmp))
    assert report["docs_indexed"] == 3 and report["not_indexed"] == []
    assert len(stored_chunks(tmp / "index" / "store")) == 3


def test_ids_do_not_depend_on_the_directory_a_command_runs_in(two_folders, capsys, monkeypatch):
    tmp, a, b = two_folders
    config = pipeline(tmp)
    monkeypatch.chdir(tmp)
    index_json(capsys, "A", "--config", config)
    monkeypatch.chdir(a)
    again = index_json(capsys, ".", "--config", config)
    assert again["docs_unchanged"] == 1 and again["docs_indexed"] == 0
    assert len(stored_chunks(tmp / "index" / "store")) == 1


def test_prune_of_one_file_removes_nothing_else(two_folders, capsys):
    tmp, a, b = two_folders
    config = pipeline(tmp)
    index_json(capsys, str(a), str(b), "--config", config)
    report = index_json(capsys, str(b / "notes.txt"), "--prune", "--config", config)
    assert report["docs_removed"] == 0 and report["docs_unchanged"] == 1
    assert len(doc_ids(tmp / "index")) == 3


def test_prune_of_a_folder_removes_only_its_deleted_files(two_folders, capsys):
    tmp, a, b = two_folders
    config = pipeline(tmp)
    index_json(capsys, str(a), str(b), "--config", config)
    (b / "other.md").unlink()
    (a / "notes.txt").unlink()  # gone too, but A is not given: it stays until A is pruned
    report = index_json(capsys, str(b), "--prune", "--config", config)
    assert report["docs_removed"] == 1
    assert doc_ids(tmp / "index") == {file_id(a / "notes.txt"), file_id(b / "notes.txt")}
    # a folder named like the start of another (B vs B2) is not inside it
    (tmp / "B2").mkdir()
    (tmp / "B2" / "x.txt").write_text("Gamma text about a cold room.\n")
    index_json(capsys, str(tmp / "B2"), "--config", config)
    assert index_json(capsys, str(b), "--prune", "--config", config)["docs_removed"] == 0


def test_prune_keeps_documents_of_a_file_with_a_bad_record_this_run(tmp_path, capsys):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"id": i, "text": f"record {i} on cold storage"}) + "\n" for i in range(3)))
    config = pipeline(tmp_path)
    index_json(capsys, str(rows), "--config", config)
    rows.write_bytes(rows.read_bytes().replace(b"record 1", b"rec\xffrd 1"))
    report = index_json(capsys, str(rows), "--prune", "--config", config)
    assert report["docs_removed"] == 0 and len(report["not_indexed"]) == 1
    assert len(doc_ids(tmp_path / "index")) == 3  # record 1 could not be read, so it is not taken for deleted


def test_a_duplicate_id_in_one_run_is_an_error_shown_without_json(tmp_path, capsys):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        json.dumps({"id": "X1", "text": "first copy"}) + "\n" + json.dumps({"id": "X1", "text": "second"}) + "\n"
    )
    code, out, err = index(capsys, str(rows), "--config", pipeline(tmp_path))
    assert code == 3
    assert f"{rows}:2: duplicate id 'X1'" in err
    assert "1 not indexed" in out


async def test_duplicate_document_ids_given_to_the_indexer_are_reported(tmp_path):
    from ragkit.ingest.chunking import RecursiveChunker
    from ragkit.ingest.indexing import Indexer, Manifest
    from ragkit.testing import FakeEmbedder, InMemoryStore
    from ragkit.types import Document

    idx = Indexer(
        chunker=RecursiveChunker(64),
        embedder=FakeEmbedder(16),
        store=InMemoryStore(),
        manifest=Manifest(tmp_path / "m.sqlite"),
    )
    report = await idx.index([Document("d", "one text"), Document("d", "another text")])
    assert report.docs_indexed == 1 and len(report.errors) == 1 and "duplicate document id" in report.errors[0]
    idx.manifest.close()


def _first_layout_index(tmp_path, docs_dir):
    """An index as the first id scheme left it: a manifest of ids relative to the folder, the shard's files
    directly in the store folder, one document indexed."""
    import qdrant_edge as qe

    from ragkit.providers.qdrant_edge import point_id

    index_dir = tmp_path / "index"
    store = index_dir / "store"
    store.mkdir(parents=True)
    shard = qe.EdgeShard.create(
        str(store),
        qe.EdgeConfig(
            vectors={"dense": qe.EdgeVectorParams(size=384, distance=qe.Distance.Cosine)},
            sparse_vectors={"bm25": qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        ),
    )
    payload = {"chunk_id": "c0", "doc_id": "notes.txt", "text": "Old notes.", "start": 0, "end": 10}
    shard.update(qe.UpdateOperation.upsert_points([qe.Point(point_id("c0"), {"dense": [1.0] + [0.0] * 383}, payload)]))
    shard.flush()
    shard.close()
    db = sqlite3.connect(index_dir / "manifest.sqlite")
    db.execute("CREATE TABLE docs (doc_id TEXT PRIMARY KEY, hash TEXT NOT NULL, chunk_ids TEXT NOT NULL)")
    db.execute("INSERT INTO docs VALUES ('notes.txt', 'abc', '[\"c0\"]')")
    db.commit()
    db.close()
    return index_dir


def test_an_index_of_the_first_id_scheme_is_refused_with_the_way_out_then_rebuilt(two_folders, capsys):
    tmp, a, b = two_folders
    index_dir = _first_layout_index(tmp, a)
    config = pipeline(tmp)
    # readers still read it as it is
    assert [h["doc_id"] for h in search(capsys, config, "old notes")] == ["notes.txt"]
    code, _, err = index(capsys, str(a), "--config", config)
    assert code == 1 and "--rebuild" in err and "older ragkit" in err
    report = index_json(capsys, str(a), str(b), "--rebuild", "--config", config)
    assert report["docs_indexed"] == 3 and report["docs_removed"] == 1
    assert doc_ids(index_dir) == {file_id(a / "notes.txt"), file_id(b / "notes.txt"), file_id(b / "other.md")}
    texts = [p["text"] for p in stored_chunks(index_dir / "store")]
    assert len(texts) == 3 and "Old notes." not in texts
    assert index_json(capsys, str(a), "--config", config)["docs_unchanged"] == 1  # plain runs work again
