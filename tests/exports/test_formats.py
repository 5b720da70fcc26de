"""Files read back: CSV and XLSX with the same values and Chinese intact, PDF text."""

from __future__ import annotations

import csv
import datetime as dt
import re
from decimal import Decimal

import openpyxl
import pypdf
import pytest
from django.utils import timezone, translation

from penalties import exports
from penalties.exports import formats
from penalties.exports.services import export_to_file
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    # The assertions read English labels ("page 1 of 2"); the site's default is Chinese,
    # whose catalogue would translate them.
    with translation.override("en"):
        yield


def _export(tmp_path, name, fmt, **filters):
    exporter = exports.build(name, fmt, filters)
    path = tmp_path / f"{name}.{fmt}"
    data = export_to_file(exporter, fmt, str(path), generated_by="test")
    return path, data, exports.build(name, fmt, filters)


def _as_csv(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _as_xlsx(value):
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).replace(tzinfo=None, microsecond=0)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    if isinstance(value, Decimal):
        return float(value)
    if value == "":
        return None
    return value


def test_csv_reads_back_with_a_bom_the_same_values_and_chinese(seeded, tmp_path):
    path, data, exporter = _export(tmp_path, "violations", "csv")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    with open(path, encoding="utf-8-sig", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    assert header == [c.title for c in exporter.columns]
    assert rows == [[_as_csv(v) for v in row] for row in exporter.rows()]
    assert len(rows) == data["row_count"] == 220
    assert any("有限公司" in row[3] for row in rows)


def test_xlsx_reads_back_typed_with_a_frozen_header(seeded, tmp_path):
    path, data, exporter = _export(tmp_path, "violations", "xlsx")
    book = openpyxl.load_workbook(path)
    sheet = book.worksheets[0]
    assert sheet.freeze_panes == "A2"
    header, *rows = list(sheet.iter_rows(values_only=True))
    assert list(header) == [c.title for c in exporter.columns]
    expected = [tuple(_as_xlsx(v) for v in row) for row in exporter.rows()]
    assert [tuple(r) for r in rows] == expected
    assert len(rows) == data["row_count"]
    first = rows[0]
    assert isinstance(first[0], int) and isinstance(first[1], dt.datetime)  # numbers and dates, not text
    assert any("有限公司" in row[3] for row in rows)


def test_xlsx_measures_keep_times_and_delays_as_numbers(seeded, tmp_path):
    path, _data, exporter = _export(tmp_path, "measures", "xlsx")
    rows = list(openpyxl.load_workbook(path).worksheets[0].iter_rows(min_row=2, values_only=True))
    assert [tuple(r) for r in rows] == [tuple(_as_xlsx(v) for v in row) for row in exporter.rows()]
    assert any(isinstance(r[-1], int | float) for r in rows)  # a number, not text


def test_text_that_looks_like_a_formula_stays_text(db, tmp_path):
    factories.ViolationFactory(description='=HYPERLINK("http://evil.example","点我")')
    path, _data, _exporter = _export(tmp_path, "violations", "csv")
    with open(path, encoding="utf-8-sig", newline="") as handle:
        row = list(csv.reader(handle))[1]
    assert row[-1] == "'" + '=HYPERLINK("http://evil.example","点我")'
    path, _data, _exporter = _export(tmp_path, "violations", "xlsx")
    cell = openpyxl.load_workbook(path).worksheets[0].cell(row=2, column=22)
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK")


def test_a_multi_section_csv_has_a_title_and_header_per_section(chinese_trader, tmp_path):
    path, data, _exporter = _export(tmp_path, "credit_file", "csv", uscc=chinese_trader.uscc)
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == [str(data["sections"][0]["title"])]
    assert rows[1] == ["item", "value"] and rows[2] == ["name", chinese_trader.name]
    assert sum(1 for row in rows if row == []) == len(data["sections"]) - 1


def _pdf_text(path) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(path).pages]


def test_the_credit_file_pdf_holds_the_traders_chinese_name(chinese_trader, tmp_path):
    path, data, _exporter = _export(tmp_path, "credit_file", "pdf", uscc=chinese_trader.uscc)
    text = "\n".join(_pdf_text(path))
    assert "杭州鑫源电子商务有限公司" in text
    assert "王小明" in text and "七天美白" in text
    assert chinese_trader.uscc in text  # the filters in the header
    assert re.search(r"page 1 of \d+", text)
    assert data["row_count"] > 0


def test_every_pdf_page_says_page_x_of_y(db, tmp_path):
    trader = factories.TraderFactory(name="深圳南山优品贸易有限公司")
    for n in range(90):
        factories.ViolationFactory(trader=trader, description=f"第{n}次抽查发现宣传与实际不符" * 3)
    path, _data, _exporter = _export(tmp_path, "credit_file", "pdf", uscc=trader.uscc)
    pages = _pdf_text(path)
    assert len(pages) > 2
    for number, text in enumerate(pages, start=1):
        assert f"page {number} of {len(pages)}" in text
        assert "深圳南山优品贸易有限公司" in text or number > 1
        assert trader.uscc in text  # the header repeats on every page


def test_summaries_print_as_pdf(seeded, tmp_path):
    path, data, _exporter = _export(tmp_path, "platform_compliance", "pdf")
    text = "\n".join(_pdf_text(path))
    assert "淘宝" in text and "拼多多" in text
    assert data["row_count"] == 5


def test_a_pdf_refuses_more_rows_than_it_can_lay_out(chinese_trader, tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "MAX_PDF_ROWS", 3)
    with pytest.raises(formats.ExportTooLarge):
        _export(tmp_path, "credit_file", "pdf", uscc=chinese_trader.uscc)


def test_xlsx_continues_a_section_on_a_new_sheet_past_the_row_limit(db, tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "XLSX_MAX_ROWS", 4)
    factories.ViolationFactory.create_batch(7)
    path, data, _exporter = _export(tmp_path, "violations", "xlsx")
    book = openpyxl.load_workbook(path)
    assert [sheet.max_row for sheet in book.worksheets] == [4, 4, 2]  # 3 + 3 + 1 rows, a header each
    assert data["row_count"] == 7
