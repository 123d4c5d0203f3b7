"""Loaders: every format, stable ids, sorted directory walk, and bad lines reported by file and line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from ragkit.errors import DataError
from ragkit.ingest.doc_ids import file_id
from ragkit.ingest.loaders import LoadReport, load_path


def rel(docs, base: Path) -> list[str]:
    """Document ids with the base folder's id cut off (ids are absolute paths)."""
    prefix = file_id(base) + "/"
    return [d.id.removeprefix(prefix) for d in docs]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    write(tmp_path / "b.txt", "Plain text about LABO-288.\n")
    write(tmp_path / "a" / "guide.md", "Intro line\n\n# LABO-288 Manual #\n\nText.\n\n## Alarms\nBeeps.\n")
    write(tmp_path / "a" / "notes.md", "no heading here\n")
    write(
        tmp_path / "records.jsonl",
        json.dumps({"_id": "Normans#0", "title": "Normans", "text": "The Normans were...", "year": 911})
        + "\n\n"
        + json.dumps({"id": 7, "text": "Seven", "tags": ["x"]})
        + "\n"
        + json.dumps({"text": "no id at all"})
        + "\n",
    )
    write(
        tmp_path / "products.csv",
        'id,name,text,price,volume_l,code\nLABO-288,Lab fridge,"A fridge, with a comma",1299.50,288,0042\n'
        'MED-1,Med fridge,"Two\nlines",899,140,abc\n',
    )
    write(tmp_path / "ignored.png", "\\x89PNG")
    write(tmp_path / ".hidden" / "secret.txt", "never loaded")
    return tmp_path


def test_directory_loads_every_format_in_sorted_order(corpus):
    report = LoadReport()
    docs = list(load_path(corpus, report=report))
    assert all(d.id.startswith(file_id(corpus) + "/") for d in docs)
    assert rel(docs, corpus) == [
        "a/guide.md",
        "a/notes.md",
        "b.txt",
        "products.csv#LABO-288",
        "products.csv#MED-1",
        "records.jsonl#Normans#0",
        "records.jsonl#7",
        "records.jsonl#4",
    ]
    by_id = dict(zip(rel(docs, corpus), docs))
    assert by_id["a/guide.md"].metadata["title"] == "LABO-288 Manual"
    assert by_id["a/notes.md"].metadata["title"] == "notes"
    assert by_id["b.txt"].text == "Plain text about LABO-288.\n"
    normans = by_id["records.jsonl#Normans#0"]
    assert normans.text == "The Normans were..." and normans.metadata["title"] == "Normans"
    assert normans.metadata["year"] == 911 and normans.metadata["line"] == 1 and "_id" not in normans.metadata
    assert by_id["records.jsonl#7"].metadata["tags"] == ["x"]
    fridge = by_id["products.csv#LABO-288"]
    assert fridge.text == "A fridge, with a comma"
    assert fridge.metadata["price"] == 1299.5 and fridge.metadata["volume_l"] == 288
    assert fridge.metadata["code"] == "0042" and fridge.metadata["name"] == "Lab fridge"
    assert by_id["products.csv#MED-1"].text == "Two\nlines" and by_id["products.csv#MED-1"].metadata["line"] == 3
    assert report.files == 5 and report.documents == 8 and report.errors == []
    assert [d.id for d in load_path(corpus)] == [d.id for d in docs]  # stable
    assert by_id["b.txt"].metadata["source"] == str(corpus / "b.txt")


def test_a_file_has_the_same_id_whichever_way_it_is_named(corpus, monkeypatch):
    whole = {d.id for d in load_path(corpus)}
    assert [d.id for d in load_path(corpus / "a" / "guide.md")] == [file_id(corpus / "a" / "guide.md")]
    assert file_id(corpus / "a" / "guide.md") in whole
    monkeypatch.chdir(corpus / "a")
    assert [d.id for d in load_path("guide.md")] == [file_id(corpus / "a" / "guide.md")]
    assert [d.id for d in load_path("../a/./guide.md")] == [file_id(corpus / "a" / "guide.md")]
    with pytest.raises(DataError, match="unsupported file type"):
        list(load_path(corpus / "ignored.png"))
    with pytest.raises(DataError, match="no such file"):
        list(load_path(corpus / "missing.txt"))


def test_jsonl_custom_fields(tmp_path):
    f = write(tmp_path / "q.jsonl", json.dumps({"key": "k1", "body": "hello", "heading": "H", "n": 1}) + "\n")
    docs = list(load_path(f, text_field="body", id_fields=("key",), title_field="heading"))
    assert docs[0].id == file_id(f) + "#k1" and docs[0].text == "hello"
    assert docs[0].metadata["title"] == "H" and docs[0].metadata["n"] == 1 and "body" not in docs[0].metadata


def test_csv_custom_columns(tmp_path):
    f = write(tmp_path / "c.csv", "sku,title,summary,details,rating\nX1,Fridge,Cold box,Has a door,4.5\nX2,Empty,,,3\n")
    report = LoadReport()
    docs = list(
        load_path(f, csv_id_column="sku", csv_text_columns=("summary", "details"), on_error="skip", report=report)
    )
    assert [d.id for d in docs] == [file_id(f) + "#X1"]
    assert docs[0].text == "Cold box\nHas a door" and docs[0].metadata == {
        "title": "Fridge",
        "rating": 4.5,
        "source": str(f),
        "line": 2,
    }
    assert [(e.line, "empty" in e.message) for e in report.errors] == [(3, True)]


BAD_JSONL = (
    '{"id": 1, "text": "good"}\n{"id": 2, "text": "broken"\n[1, 2]\n{"id": 3}\n'
    '{"id": 1, "text": "dup"}\n{"id": 4, "text": "fine"}\n'
)


def test_bad_jsonl_lines_raise_with_file_and_line(tmp_path):
    f = write(tmp_path / "bad.jsonl", BAD_JSONL)
    with pytest.raises(DataError) as info:
        list(load_path(f, on_error="raise"))
    assert info.value.line == 2 and info.value.path == str(f) and "not valid JSON" in str(info.value)
    assert f"{f}:2:" in str(info.value)


def test_bad_jsonl_lines_skipped_are_logged_and_reported(tmp_path, caplog):
    f = write(tmp_path / "bad.jsonl", BAD_JSONL)
    report = LoadReport()
    with caplog.at_level(logging.WARNING, logger="ragkit.ingest.loaders"):
        docs = list(load_path(f, on_error="skip", report=report))
    assert [d.text for d in docs] == ["good", "fine"]
    assert [(e.path, e.line) for e in report.errors] == [(str(f), 2), (str(f), 3), (str(f), 4), (str(f), 5)]
    assert "JSON object" in report.errors[1].message and "'text'" in report.errors[2].message
    assert "duplicate" in report.errors[3].message
    assert sum("skipped" in r.message for r in caplog.records) == 4


def test_report_mode_loads_good_records_then_raises_listing_all(tmp_path):
    f = write(tmp_path / "bad.jsonl", BAD_JSONL)
    seen = []
    report = LoadReport()
    with pytest.raises(DataError, match=r"4 record\(s\) could not be loaded") as info:
        for doc in load_path(f, report=report):
            seen.append(doc.text)
    assert seen == ["good", "fine"]
    assert ":2:" in str(info.value) and ":5:" in str(info.value)
    assert len(report.errors) == 4


def test_bad_csv_rows(tmp_path):
    f = write(tmp_path / "bad.csv", 'id,text,n\n1,ok,1\n2,too,many,fields\n3\n1,dup id,2\n4,"fine",x\n')
    report = LoadReport()
    docs = list(load_path(f, on_error="skip", report=report))
    assert [(d.id, d.metadata["n"]) for d in docs] == [(file_id(f) + "#1", 1), (file_id(f) + "#4", "x")]
    assert [e.line for e in report.errors] == [3, 4, 5]
    with pytest.raises(DataError) as info:
        list(load_path(f, on_error="raise"))
    assert info.value.line == 3 and "3 fields" not in str(info.value) and "4 fields" in str(info.value)
    nocol = write(tmp_path / "nocol.csv", "id,body\n1,x\n")
    with pytest.raises(DataError, match="missing text column"):
        list(load_path(nocol, on_error="raise"))


def test_undecodable_file_is_reported_not_dropped(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("Kühlschrank".encode("latin-1"))
    write(tmp_path / "ok.txt", "fine")
    report = LoadReport()
    docs = list(load_path(tmp_path, on_error="skip", report=report))
    assert [d.id for d in docs] == [file_id(tmp_path / "ok.txt")]
    assert len(report.errors) == 1 and report.errors[0].line == 1 and "latin1.txt" in report.errors[0].path
    assert "not utf-8 text (byte 2 of the line)" in report.errors[0].message
    assert [d.text for d in load_path(tmp_path / "latin1.txt", encoding="latin-1")] == ["Kühlschrank"]
