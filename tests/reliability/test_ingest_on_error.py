"""Bad records: ``--on-error report`` (the default) indexes every good record, lists each bad one once as
``file:line: reason`` and exits 3; ``skip`` indexes the rest and says each once; ``raise`` stops at the first one
with exit 1, the records before it indexed. Decoding is per line: one bad byte costs one record, not the rest of
the file; a byte-order mark is dropped; CSV quoting errors name their line and swallow no good row."""

from __future__ import annotations

import json

import pytest
from ingest_cli import doc_ids, index, index_json, pipeline

from ragkit.ingest.doc_ids import file_id
from ragkit.ingest.loaders import LoadReport, load_path


def rows(path, n=10, bad=(), text="record {i} about cold storage"):
    lines = []
    for i in range(n):
        line = json.dumps({"id": i, "text": text.format(i=i)})
        lines.append("{not json" if i in bad else line)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_report_indexes_every_good_record_lists_each_bad_once_and_exits_3(tmp_path, capsys):
    data = rows(tmp_path / "rows.jsonl", bad={3, 7})
    code, out, err = index(capsys, str(data), "--config", pipeline(tmp_path))
    assert code == 3
    assert len(doc_ids(tmp_path / "index")) == 8
    listed = [line for line in err.splitlines() if "rows.jsonl:" in line]
    assert listed == [
        f"not indexed: {data}:4: not valid JSON: Expecting property name enclosed in double quotes (column 2)",
        f"not indexed: {data}:8: not valid JSON: Expecting property name enclosed in double quotes (column 2)",
    ]
    assert "indexed 8 documents" in out and "2 not indexed" in out


def test_skip_indexes_the_rest_and_says_each_bad_record_once(tmp_path, capsys):
    data = rows(tmp_path / "rows.jsonl", bad={3})
    code, out, err = index(capsys, str(data), "--on-error", "skip", "--config", pipeline(tmp_path))
    assert code == 0
    assert err.count(f"{data}:4") == 1, err
    assert len(doc_ids(tmp_path / "index")) == 9


def test_raise_stops_at_the_first_bad_record_with_those_before_it_indexed(tmp_path, capsys):
    data = rows(tmp_path / "rows.jsonl", bad={3})
    code, _, err = index(capsys, str(data), "--on-error", "raise", "--config", pipeline(tmp_path))
    assert code == 1 and f"error: {data}:4: not valid JSON" in err
    assert doc_ids(tmp_path / "index") == {file_id(data) + f"#{i}" for i in range(3)}


def test_json_output_lists_what_was_not_indexed(tmp_path, capsys):
    data = rows(tmp_path / "rows.jsonl", bad={0})
    report = index_json(capsys, str(data), "--config", pipeline(tmp_path))
    assert report["load_errors"] == 1 and report["not_indexed"] == [
        f"{data}:1: not valid JSON: Expecting property name enclosed in double quotes (column 2)"
    ]


def test_one_invalid_byte_costs_one_jsonl_record_named_by_line(tmp_path):
    data = tmp_path / "big.jsonl"
    lines = [json.dumps({"id": i, "text": f"record {i} about cold storage"}).encode() for i in range(1000)]
    lines[499] = lines[499].replace(b"cold", b"c\xffld")
    data.write_bytes(b"\n".join(lines) + b"\n")
    report = LoadReport()
    docs = list(load_path(data, on_error="collect", report=report))
    assert len(docs) == 999
    assert [(e.line, e.message) for e in report.errors] == [(500, "not UTF-8 text (byte 40 of the line)")]


def test_a_byte_order_mark_is_dropped_everywhere(tmp_path):
    bom = b"\xef\xbb\xbf"
    (tmp_path / "a.csv").write_bytes(bom + b"id,text\nK1,first row\nK2,second row\n")
    (tmp_path / "b.jsonl").write_bytes(bom + json.dumps({"id": "J1", "text": "a record"}).encode() + b"\n")
    (tmp_path / "c.txt").write_bytes(bom + b"Plain text.")
    report = LoadReport()
    docs = {d.id.rsplit("/", 1)[1]: d for d in load_path(tmp_path, report=report)}
    assert set(docs) == {"a.csv#K1", "a.csv#K2", "b.jsonl#J1", "c.txt"} and report.errors == []
    assert docs["c.txt"].text == "Plain text."


def test_an_unterminated_quote_is_reported_on_its_line_and_swallows_no_good_row(tmp_path):
    data = tmp_path / "q.csv"
    data.write_text('id,text\nK1,"opened and never closed\nK2,a good row\nK3,"quoted, fine"\nK4,last\n')
    report = LoadReport()
    docs = list(load_path(data, on_error="collect", report=report))
    assert [d.id.rsplit("#", 1)[1] for d in docs] == ["K2", "K3", "K4"]
    assert [e.line for e in report.errors] == [2] and "quot" in report.errors[0].message


def test_a_quote_left_open_to_the_end_of_the_file_is_reported(tmp_path):
    data = tmp_path / "q.csv"
    data.write_text('id,text\nK1,good\nK2,"never closed\nK3,was a good row\n')
    report = LoadReport()
    docs = list(load_path(data, on_error="collect", report=report))
    assert [d.id.rsplit("#", 1)[1] for d in docs] == ["K1", "K3"]
    assert [e.line for e in report.errors] == [3] and "unexpected end of data" in report.errors[0].message


def test_a_bad_byte_in_csv_costs_only_its_row(tmp_path):
    data = tmp_path / "c.csv"
    data.write_bytes(b"id,text\nK1,fine\nK2,caf\xe9\nK3,also fine\n")
    report = LoadReport()
    docs = list(load_path(data, on_error="collect", report=report))
    assert [d.id.rsplit("#", 1)[1] for d in docs] == ["K1", "K3"]
    assert [(e.line, e.message) for e in report.errors] == [(3, "not utf-8 text (byte 7 of the line)")]


def test_a_bad_byte_in_a_text_file_names_its_line(tmp_path):
    data = tmp_path / "t.txt"
    data.write_bytes(b"line one\nline two\nline thr\xffee\n")
    report = LoadReport()
    assert list(load_path(data, on_error="collect", report=report)) == []
    assert report.errors[0].line == 3 and "byte 9 of the line" in report.errors[0].message


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"id": {"a": 1}, "text": "x"}, "field 'id' must be a non-empty string or integer"),
        ({"id": True, "text": "x"}, "field 'id' must be a non-empty string or integer"),
        ({"id": " ", "text": "x"}, "field 'id' must be a non-empty string or integer"),
        ({"id": 1, "text": ["x"]}, "field 'text' must be a non-empty string"),
        ([1, 2], "expected a JSON object, got list"),
    ],
)
def test_records_with_an_unusable_id_or_text_are_named(tmp_path, record, reason):
    data = tmp_path / "r.jsonl"
    data.write_text(json.dumps(record) + "\n" + json.dumps({"id": 2, "text": "good"}) + "\n")
    report = LoadReport()
    assert len(list(load_path(data, on_error="collect", report=report))) == 1
    assert report.errors[0].line == 1 and reason in report.errors[0].message
