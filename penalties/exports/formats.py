"""Files from an exporter's sections: CSV, XLSX and PDF.

- CSV: UTF-8 with a byte-order mark so Excel shows Chinese; one header row. A report with
  several sections writes, per section, a title row, the header, the rows and a blank
  line. Text that starts like a formula (= + - @ tab CR) gets a leading apostrophe, so a
  platform's description cannot run in an auditor's spreadsheet.
- XLSX: XlsxWriter in constant_memory mode (each row goes to disk as it is written), typed
  cells (numbers, dates, times in the local zone), a frozen header row, one sheet per
  section; past Excel's 1,048,576 rows a section continues on another sheet.
- PDF: reportlab with its built-in CJK font STSong-Light (no font file to ship), a header
  with report name, filters and generation time on every page, and "page x of y". For
  summaries and credit files: the whole document is laid out in memory, so it refuses
  more than MAX_PDF_ROWS rows.

Every writer returns how many data rows each section holds; the manifest records them.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from django.utils import timezone
from django.utils.translation import gettext as _

from penalties.exports.base import DATE, DATETIME, DECIMAL, INT, TEXT, Column, Exporter, Section

FORMATS = ("csv", "xlsx", "pdf")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}
XLSX_MAX_ROWS = 1_048_576
MAX_PDF_ROWS = 20_000
PROGRESS_EVERY = 5000  # rows between progress callbacks
ROWS_KEYWORD = "creditledger-rows="  # PDF and XLSX keywords carry the row count (verify_export)
FORMULA_START = "=+-@\t\r"  # a cell starting with one of these runs as a formula in Excel

Progress = Callable[[int], None]


class ExportTooLarge(ValueError):
    """More rows than the format can hold (PDF)."""


@dataclass(frozen=True)
class Heading:
    """What a file says about itself: report title, filters, when it was made."""

    title: str
    filters: list[tuple[str, str]]
    generated_at: dt.datetime

    @property
    def filters_text(self) -> str:
        if not self.filters:
            return _("no filters: every row")
        return "; ".join(f"{label}: {value}" for label, value in self.filters)

    @property
    def generated_text(self) -> str:
        local = timezone.localtime(self.generated_at)
        return f"{local:%Y-%m-%d %H:%M:%S} ({timezone.get_current_timezone_name()})"


def write(fmt: str, exporter: Exporter, path: str, heading: Heading, progress: Progress | None = None):
    """Write the exporter's sections to `path`; return [(section, rows written)]."""
    writer = {"csv": write_csv, "xlsx": write_xlsx, "pdf": write_pdf}[fmt]
    return writer(exporter.sections(), path, heading, progress or (lambda n: None))


class _Counter:
    """Counts rows across sections and reports progress every PROGRESS_EVERY rows."""

    def __init__(self, progress: Progress) -> None:
        self.total = 0
        self.progress = progress

    def tick(self) -> None:
        self.total += 1
        if self.total % PROGRESS_EVERY == 0:
            self.progress(self.total)


def _local(value: dt.datetime, tz) -> dt.datetime:
    return value.astimezone(tz) if value.tzinfo is not None else value


# --- CSV ----------------------------------------------------------------------------------


def _csv_converter(columns: tuple[Column, ...]) -> Callable[[tuple], Any]:
    """One function per section that turns a row into CSV cells: local times, and the
    apostrophe before formula-like text. Numbers, dates and None need nothing: csv writes
    str(value), and None as an empty field. Resolved once, so a row costs one call."""
    times = [i for i, c in enumerate(columns) if c.kind == DATETIME]
    texts = [i for i, c in enumerate(columns) if c.kind == TEXT]
    tz = timezone.get_current_timezone()  # once: each lookup goes through a context-local

    def convert(row: tuple) -> Any:
        row = list(row)
        for i in times:
            value = row[i]
            if value is not None:
                row[i] = _local(value, tz).isoformat(" ", "seconds")[:19]
        for i in texts:
            value = row[i]
            if value and value.__class__ is str and value[0] in FORMULA_START:
                row[i] = "'" + value
        return row

    return convert


def write_csv(sections: Iterable[Section], path: str, heading: Heading, progress: Progress):
    sections = list(sections)
    counter, written = _Counter(progress), []
    with open(path, "wb") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
        out = csv.writer(text)
        for number, section in enumerate(sections):
            if len(sections) > 1:
                if number:
                    out.writerow([])
                out.writerow([str(section.title)])
            out.writerow([c.title for c in section.columns])
            convert = _csv_converter(section.columns)
            count = 0
            for row in section.rows:
                out.writerow(convert(row))
                count += 1
                counter.tick()
            written.append((section, count))
    return written


# --- XLSX ---------------------------------------------------------------------------------


def _sheet_name(title: str, taken: set[str]) -> str:
    base = re.sub(r"[\[\]:*?/\\]", " ", title).strip()[:28] or "Sheet"
    name, n = base, 1
    while name.lower() in taken:
        n += 1
        name = f"{base[:25]} ({n})"
    taken.add(name.lower())
    return name


def write_xlsx(sections: Iterable[Section], path: str, heading: Heading, progress: Progress):
    import xlsxwriter

    book = xlsxwriter.Workbook(
        path,
        {
            "constant_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,  # a description is text, never a formula
            "strings_to_urls": False,
        },
    )
    styles = {
        "header": book.add_format({"bold": True, "bg_color": "#DDE7F0", "bottom": 1, "text_wrap": True}),
        DATE: book.add_format({"num_format": "yyyy-mm-dd"}),
        DATETIME: book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
        DECIMAL: book.add_format({"num_format": "0.00"}),
    }
    counter, written, taken = _Counter(progress), [], set()
    for section in sections:
        count = _xlsx_section(book, section, styles, taken, counter)
        written.append((section, count))
    book.set_properties(
        {
            "title": heading.title,
            "subject": heading.filters_text,
            "comments": _("Generated %(when)s") % {"when": heading.generated_text},
            "keywords": f"{ROWS_KEYWORD}{counter.total}",
            "author": "creditledger",
        }
    )
    book.close()
    return written


def _xlsx_section(book, section: Section, styles: dict, taken: set[str], counter: _Counter) -> int:
    columns = section.columns
    tz = timezone.get_current_timezone()
    writers = [_xlsx_cell(c.kind, styles, tz) for c in columns]
    sheet, row_no, count, part = None, XLSX_MAX_ROWS, 0, 0
    rows = iter(section.rows)
    while True:
        if row_no >= XLSX_MAX_ROWS:  # a new sheet: the first, or a continuation
            part += 1
            title = str(section.title) if part == 1 else f"{section.title} ({part})"
            sheet = book.add_worksheet(_sheet_name(title, taken))
            for i, column in enumerate(columns):
                sheet.set_column(i, i, column.width)
            sheet.write_row(0, 0, [c.title for c in columns], styles["header"])
            sheet.freeze_panes(1, 0)
            row_no = 1
        row = next(rows, None)
        if row is None:
            return count
        for i, value in enumerate(row):
            if value is not None and value != "":
                writers[i](sheet, row_no, i, value)
        row_no += 1
        count += 1
        counter.tick()


def _xlsx_cell(kind: str, styles: dict, tz):
    if kind == INT:
        return lambda sheet, r, c, v: sheet.write_number(r, c, v)
    if kind == DECIMAL:
        style = styles[DECIMAL]
        return lambda sheet, r, c, v: sheet.write_number(r, c, float(v), style)
    if kind == DATE:
        style = styles[DATE]
        return lambda sheet, r, c, v: sheet.write_datetime(r, c, v, style)
    if kind == DATETIME:
        style = styles[DATETIME]
        # Whole seconds: Excel keeps milliseconds at best, and a register needs no more.
        return lambda sheet, r, c, v: sheet.write_datetime(
            r, c, _local(v, tz).replace(tzinfo=None, microsecond=0), style
        )
    return lambda sheet, r, c, v: sheet.write_string(r, c, str(v))


# --- PDF ----------------------------------------------------------------------------------

FONT = "STSong-Light"


def _register_font() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))


def _pdf_text(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == DATETIME and isinstance(value, dt.datetime):
        return f"{timezone.localtime(value):%Y-%m-%d %H:%M}"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:,}" if kind == DECIMAL else str(value)
    return str(value)


def write_pdf(sections: Iterable[Section], path: str, heading: Heading, progress: Progress):
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer

    _register_font()
    sections = list(sections)
    wide = max(sum(c.width for c in s.columns) for s in sections) > 110
    pagesize = landscape(A4) if wide else A4
    cell = ParagraphStyle("cell", fontName=FONT, fontSize=7.5, leading=9.5, wordWrap="CJK")
    head = ParagraphStyle("head", parent=cell, textColor=colors.HexColor("#1F3A5F"))
    h2 = ParagraphStyle("h2", fontName=FONT, fontSize=11, leading=15, spaceBefore=6, spaceAfter=4)
    counter, written, story = _Counter(progress), [], []
    frame_width = pagesize[0] - 30 * mm
    for section in sections:
        story.append(Paragraph(escape(str(section.title)), h2))
        total_width = sum(c.width for c in section.columns)
        widths = [frame_width * c.width / total_width for c in section.columns]
        data = [[Paragraph(escape(c.title), head) for c in section.columns]]
        count = 0
        for row in section.rows:
            if counter.total >= MAX_PDF_ROWS:
                raise ExportTooLarge(
                    _("More than %(limit)s rows: choose CSV or XLSX for this selection.")
                    % {"limit": f"{MAX_PDF_ROWS:,}"}
                )
            cells = zip(row, section.columns, strict=True)
            data.append([Paragraph(escape(_pdf_text(v, c.kind)), cell) for v, c in cells])
            count += 1
            counter.tick()
        if count:
            table = LongTable(data, colWidths=widths, repeatRows=1)
            table.setStyle(_table_style(colors, section.columns))
            story.append(table)
        else:
            story.append(Paragraph(escape(_("(none)")), cell))
        story.append(Spacer(1, 4 * mm))
        written.append((section, count))
    doc = SimpleDocTemplate(
        path,
        pagesize=pagesize,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=30 * mm,
        bottomMargin=15 * mm,
        title=heading.title,
        subject=heading.filters_text,
        author="creditledger",
        creator="creditledger",
        keywords=f"{ROWS_KEYWORD}{counter.total}",
    )
    draw = _page_header(heading)
    doc.build(story, onFirstPage=draw, onLaterPages=draw, canvasmaker=_numbered_canvas(pagesize))
    return written


def _table_style(colors, columns: tuple[Column, ...]):
    from reportlab.platypus import TableStyle

    return TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#9AA5B1")),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#DDE7F0")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#F5F7FA")]),
            ("LEFTPADDING", (0, 0), (-1, -1), 2),
            ("RIGHTPADDING", (0, 0), (-1, -1), 2),
        ]
    )


def _page_header(heading: Heading):
    from reportlab.lib.units import mm
    from reportlab.lib.utils import simpleSplit

    filters = _("Filters: %(filters)s") % {"filters": heading.filters_text}
    generated = _("Generated %(when)s") % {"when": heading.generated_text}

    def draw(canvas, doc) -> None:
        width, height = doc.pagesize
        canvas.saveState()
        canvas.setFont(FONT, 13)
        canvas.drawString(15 * mm, height - 13 * mm, heading.title)
        canvas.setFont(FONT, 8)
        lines = simpleSplit(filters, FONT, 8, width - 30 * mm)[:2]
        for n, line in enumerate([*lines, generated]):
            canvas.drawString(15 * mm, height - (18 + 3.6 * n) * mm, line)
        canvas.setLineWidth(0.5)
        canvas.line(15 * mm, height - 28 * mm, width - 15 * mm, height - 28 * mm)
        canvas.restoreState()

    return draw


def _numbered_canvas(pagesize):
    """A canvas that holds its pages until the end, so each can say "page x of y"."""
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    class NumberedCanvas(Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self):
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._pages)
            for number, state in enumerate(self._pages, start=1):
                self.__dict__.update(state)
                self.setFont(FONT, 8)
                text = _("page %(page)s of %(pages)s") % {"page": number, "pages": total}
                self.drawRightString(pagesize[0] - 15 * mm, 8 * mm, text)
                super().showPage()
            super().save()

    return NumberedCanvas
