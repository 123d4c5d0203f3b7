"""PDF, DOCX and HTML loaders on documents the tests write themselves: pages and headings reach the chunks, and each
unreadable file is one error line while the others still load and index."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest

from ragkit.ingest.documents import docx_file, html_file, pdf_file
from ragkit.ingest.records import LoadIssue, Options

pypdf = pytest.importorskip("pypdf")
docx = pytest.importorskip("docx")

OPTS = Options("text", ("id",), "title", "id", ("text",), "utf-8")


def _pdf_string(text: str) -> bytes:
    raw = text.encode("cp1252")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def write_pdf(path: Path, pages: list[list[str] | None], *, title: str | None = None) -> Path:
    """A minimal PDF 1.4: one Helvetica text block per page; ``None`` draws a grey box and no text (a "scan")."""
    objects: list[bytes] = []
    page_ids = []
    n_fixed = 3  # catalog, pages, font
    for i, lines in enumerate(pages):
        if lines is None:
            content = b"0.5 g 72 200 450 500 re f"
        else:
            body = b" ".join(_pdf_string(line) + b" Tj T*" for line in lines)
            content = b"BT /F1 12 Tf 14 TL 72 720 Td " + body + b" ET"
        stream = zlib.compress(content)
        page_id, content_id = n_fixed + 1 + 2 * i, n_fixed + 2 + 2 * i
        page_ids.append(page_id)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            b"/Contents %d 0 R >>" % content_id
        )
        objects.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream")
    info_id = n_fixed + 2 * len(pages) + 1
    kids = b" ".join(b"%d 0 R" % p for p in page_ids)
    fixed = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % len(pages),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    info = b"<< /Title " + _pdf_string(title) + b" >>" if title else b"<< >>"
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, obj in enumerate([*fixed, *objects, info], 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(offsets) + 1,
        info_id,
        xref,
    )
    path.write_bytes(bytes(out))
    return path


def with_outline(path: Path, marks: list[tuple[str, int]], **encrypt: str) -> Path:
    """The PDF at ``path`` with bookmarks (title, page index), optionally encrypted (RC4, no extra package)."""
    writer = pypdf.PdfWriter(clone_from=str(path))
    for title, page in marks:
        writer.add_outline_item(title=title, page_number=page)
    if encrypt:
        writer.encrypt(algorithm="RC4-128", **encrypt)
    with path.open("wb") as f:
        writer.write(f)
    return path


MANUAL_PAGES = [
    ["POLAR-ULT-500 operating manual", "An ultra-low freezer for -86 °C."],
    ["Installation", "Leave 20 cm of free space behind the freezer.", "Connect it to a 230 V outlet."],
    ["Alarm codes", "E7 means the door stayed open for more than 3 minutes."],
]


def manual_pdf(tmp_path: Path, name: str = "manual.pdf", **encrypt: str) -> Path:
    path = write_pdf(tmp_path / name, MANUAL_PAGES, title="POLAR-ULT-500 manual")
    return with_outline(path, [("Overview", 0), ("Installation", 1), ("Alarm codes", 2)], **encrypt)


def manual_docx(path: Path) -> Path:
    d = docx.Document()
    d.core_properties.title = "LABO-288 service guide"
    d.add_heading("LABO-288 service guide", 0)
    d.add_paragraph("This guide covers the LABO-288 laboratory refrigerator.")
    d.add_heading("Cleaning", 1)
    d.add_paragraph("Wipe the gaskets with mild soap every month.")
    d.add_heading("Defrosting", 2)
    d.add_paragraph("Defrost when the ice is thicker than 4 mm.")
    d.add_page_break()
    d.add_heading("Spare parts", 1)
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Part", "Number"
    table.cell(1, 0).text, table.cell(1, 1).text = "Door gasket", "LB-2881"
    d.save(str(path))
    return path


HTML = """<!doctype html><html><head><title>KN-VAX-98 FAQ</title><style>p {color: red}</style>
<script>var secret = "not text";</script></head>
<body><nav>Home | Products</nav>
<h1>KN-VAX-98 questions</h1><p>Answers about the vaccine refrigerator.</p>
<h2>Alarms</h2><p>The SMS alarm sends a message when the temperature leaves 2&ndash;8&nbsp;°C.</p>
<h3>Battery</h3><p>The alarm battery lasts <b>72 hours</b>.<br>Replace it yearly.</p>
<h2>Power</h2><ul><li>230 V</li><li>Solar kit optional</li></ul>
</body></html>"""


def docs_and_issues(reader, path):
    items = list(reader(path, OPTS))
    return [i for i in items if not isinstance(i, LoadIssue)], [i for i in items if isinstance(i, LoadIssue)]


def test_pdf_pages_carry_page_numbers_and_bookmark_headings(tmp_path):
    docs, issues = docs_and_issues(pdf_file, manual_pdf(tmp_path))
    assert issues == []
    assert [d.metadata["page"] for d in docs] == [1, 2, 3]
    assert [d.metadata["heading"] for d in docs] == ["Overview", "Installation", "Alarm codes"]
    assert docs[1].metadata["pages"] == 3 and docs[1].metadata["title"] == "POLAR-ULT-500 manual"
    assert "20 cm of free space" in docs[1].text and "-86 °C" in docs[0].text
    assert docs[2].id.endswith("manual.pdf#p3") and docs[2].id.startswith("/")


def test_an_encrypted_pdf_is_one_clear_error_unless_its_user_password_is_empty(tmp_path):
    docs, issues = docs_and_issues(pdf_file, manual_pdf(tmp_path, "locked.pdf", user_password="secret"))
    assert docs == [] and len(issues) == 1 and "needs a password" in issues[0].message
    docs, issues = docs_and_issues(pdf_file, manual_pdf(tmp_path, "owner.pdf", user_password="", owner_password="o"))
    assert issues == [] and len(docs) == 3  # only an owner password: it opens like a browser would open it


@pytest.mark.parametrize("data", [b"", b"%PDF-1.4\nthis is not a pdf", b"hello", None])
def test_a_corrupt_pdf_is_one_error_line(tmp_path, data):
    path = tmp_path / "bad.pdf"
    if data is None:  # a real PDF cut in half
        data = manual_pdf(tmp_path).read_bytes()[:300]
    path.write_bytes(data)
    docs, issues = docs_and_issues(pdf_file, path)
    assert docs == [] and len(issues) == 1 and "not a readable PDF" in issues[0].message
    assert issues[0].path == str(path)


def test_a_scanned_pdf_says_it_has_no_text_layer(tmp_path, caplog):
    docs, issues = docs_and_issues(pdf_file, write_pdf(tmp_path / "scan.pdf", [None, None]))
    assert docs == [] and "no text layer on any of its 2 page(s)" in issues[0].message and "OCR" in issues[0].message
    mixed = write_pdf(tmp_path / "mixed.pdf", [["Typed page"], None])
    docs, issues = docs_and_issues(pdf_file, mixed)
    assert [d.metadata["page"] for d in docs] == [1] and issues == []
    assert "page(s) 2 have no text layer" in caplog.text


def test_docx_sections_follow_the_heading_path_and_page_breaks(tmp_path):
    docs, issues = docs_and_issues(docx_file, manual_docx(tmp_path / "guide.docx"))
    assert issues == []
    by_heading = {d.metadata["heading"]: d for d in docs}
    assert by_heading["Defrosting"].metadata["headings"] == ["LABO-288 service guide", "Cleaning", "Defrosting"]
    assert by_heading["Defrosting"].text.startswith("Defrosting\nDefrost when the ice")
    assert by_heading["Cleaning"].metadata["page"] == 1 and by_heading["Spare parts"].metadata["page"] == 2
    assert "Door gasket | LB-2881" in by_heading["Spare parts"].text
    assert all(d.metadata["title"] == "LABO-288 service guide" for d in docs)
    assert [d.id.rsplit("#", 1)[1] for d in docs] == [f"s{n}" for n in range(1, len(docs) + 1)]


def test_a_docx_that_is_not_a_zip_is_one_error_line(tmp_path):
    path = tmp_path / "fake.docx"
    path.write_text("this is plain text with a .docx name")
    docs, issues = docs_and_issues(docx_file, path)
    assert docs == [] and len(issues) == 1 and "not a DOCX file" in issues[0].message
    import zipfile

    other = tmp_path / "other.docx"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("hello.txt", "a zip, but not a word document")
    docs, issues = docs_and_issues(docx_file, other)
    assert docs == [] and len(issues) == 1 and "DOCX" in issues[0].message


def test_html_visible_text_by_heading_section(tmp_path):
    path = tmp_path / "faq.html"
    path.write_text(HTML, encoding="utf-8")
    docs, issues = docs_and_issues(html_file, path)
    assert issues == []
    by_heading = {d.metadata.get("heading"): d for d in docs}
    battery = by_heading["Battery"]
    assert battery.metadata["headings"] == ["KN-VAX-98 questions", "Alarms", "Battery"]
    assert battery.text == "Battery\n\nThe alarm battery lasts 72 hours.\nReplace it yearly."  # <br>: one line
    assert "2–8 °C" in by_heading["Alarms"].text
    assert by_heading["Power"].text == "Power\n\n230 V\n\nSolar kit optional"
    joined = " ".join(d.text for d in docs)
    assert "secret" not in joined and "color" not in joined and "Home | Products" in joined
    assert all(d.metadata["title"] == "KN-VAX-98 FAQ" for d in docs)


def test_html_broken_markup_keeps_the_text_before_it_and_reports_the_line(tmp_path):
    path = tmp_path / "broken.html"
    path.write_text("<h1>Spare parts</h1>\n<p>Gasket LB-2881.</p>\n<p>More <!-- a comment never closed\n<p>hidden")
    docs, issues = docs_and_issues(html_file, path)
    assert len(issues) == 1 and issues[0].line == 3 and "never closed" in issues[0].message
    assert docs[0].text == "Spare parts\n\nGasket LB-2881.\n\nMore"
    binary = tmp_path / "image.html"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    docs, issues = docs_and_issues(html_file, binary)
    assert docs == [] and "binary" in issues[0].message
    latin = tmp_path / "latin.htm"
    latin.write_bytes('<meta charset="iso-8859-1"><p>Kühlschrank</p>'.encode("latin-1"))
    docs, issues = docs_and_issues(html_file, latin)
    assert issues == [] and docs[0].text == "Kühlschrank"


def test_index_and_search_json_show_pages_and_headings(tmp_path, capsys, monkeypatch):
    """`ragkit index` over a folder with a PDF, a DOCX, an HTML file and three broken ones: one error line per broken
    file, the good ones indexed; `ragkit search --json` returns their page and heading metadata."""
    from ragkit.cli import main

    folder = tmp_path / "docs"
    folder.mkdir()
    manual_pdf(folder)
    manual_docx(folder / "guide.docx")
    (folder / "faq.html").write_text(HTML, encoding="utf-8")
    (folder / "locked.pdf").write_bytes(manual_pdf(tmp_path, "locked.pdf", user_password="pw").read_bytes())
    (folder / "notes.docx").write_text("not a zip")
    (folder / "broken.html").write_text("<p>Kept text</p><div <!-- swallowed")
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "p.yaml"
    config.write_text(f"index_dir: {tmp_path / 'idx'}\nchunker: {{type: recursive, max_tokens: 120}}\n")
    code = main(["index", str(folder), "--config", str(config)])
    err = capsys.readouterr().err
    assert code != 0  # some files could not be loaded, and the run says so
    lines = [ln for ln in err.splitlines() if "locked.pdf" in ln or "notes.docx" in ln or "broken.html" in ln]
    assert len(lines) == 3, err
    assert "Traceback" not in err

    assert main(["search", "how much space behind the freezer", "--config", str(config), "--json", "--top-k", "3"]) == 0
    hits = json.loads(capsys.readouterr().out)
    top = hits[0]
    assert top["doc_id"].endswith("manual.pdf#p2")
    assert top["metadata"]["page"] == 2 and top["metadata"]["heading"] == "Installation"

    assert main(["search", "door gasket part number", "--config", str(config), "--json", "--top-k", "3"]) == 0
    hits = json.loads(capsys.readouterr().out)
    gasket = next(h for h in hits if h["doc_id"].endswith("guide.docx#s4") or "LB-2881" in h["text"])
    assert gasket["metadata"]["heading"] in ("Spare parts", "Cleaning") and "headings" in gasket["metadata"]

    assert main(["search", "alarm battery hours", "--config", str(config), "--json", "--top-k", "3"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["metadata"]["headings"] == ["KN-VAX-98 questions", "Alarms", "Battery"]
    assert any("Kept text" in h["text"] for h in json.loads(_search(main, capsys, config, "Kept text")))


def _search(main, capsys, config, query):
    assert main(["search", query, "--config", str(config), "--json", "--top-k", "10"]) == 0
    return capsys.readouterr().out
