"""The one CSV reader of the project: uploads in the app, the audit's ``--data``, fine-tuning data.

Why one: every face must refuse the same bad files with the same plain messages (missing, empty,
too big, binary, not UTF-8, no header, no rows, too many rows), naming the file by its name only,
never a server folder. Rows come back as ``{column: text}`` with stripped column names; missing
trailing cells are ``""`` and cells beyond the header are ignored.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bertdemo.errors import InputError


@dataclass
class CsvData:
    """A read CSV: its file name, column names (header order), rows, and the line each row starts on."""

    name: str
    columns: list[str]
    rows: list[dict[str, str]]
    lines: list[int] = dataclasses.field(default_factory=list)  # 1-based line of each row in the file (the header is line 1)

    def line_of(self, index: int) -> int:
        """The file line where row ``index`` starts (for messages that point at a row)."""
        return self.lines[index] if index < len(self.lines) else index + 2

    def __len__(self) -> int:
        return len(self.rows)


def decode_utf8(raw: bytes, name: str, field: str | None = None) -> str:
    """UTF-8 text (a BOM is dropped), or an :class:`InputError` saying where the first bad byte is."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise InputError(f"{name} is not UTF-8 text (byte 0x{raw[err.start]:02x} at byte offset {err.start}, "
                         f"line {line}); save it as UTF-8", field=field) from None


def read_csv(path: str | os.PathLike[str], field: str | None = None, max_bytes: int | None = None,
              max_rows: int | None = None) -> CsvData:
    """Read and check a UTF-8 CSV with a header row; every problem is an :class:`InputError`."""
    p = Path(path)
    name = p.name
    if not p.exists():
        raise InputError(f"file not found: {p}", field=field)
    if not p.is_file():
        raise InputError(f"not a file: {name}", field=field)
    size = p.stat().st_size
    if size == 0:
        raise InputError(f"{name} is empty; it needs a header row and at least one data row", field=field)
    if max_bytes is not None and size > max_bytes:
        raise InputError(f"{name} is {size:,} bytes; at most {max_bytes:,} are allowed", field=field)
    raw = p.read_bytes()
    if b"\x00" in raw:
        raise InputError(f"{name} looks like a binary file, not a CSV text file", field=field)
    text = decode_utf8(raw, name, field)
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if not header or not any(c.strip() for c in header):
            raise InputError(f"{name} has no header row", field=field)
        columns = [c.strip() for c in header]
        rows: list[dict[str, str]] = []
        lines: list[int] = []
        while True:
            start = reader.line_num + 1  # a quoted cell may span lines: the row starts here
            row = next(reader, None)
            if row is None:
                break
            if row:
                rows.append({c: (row[i] if i < len(row) else "") for i, c in enumerate(columns)})
                lines.append(start)
    except csv.Error as err:
        raise InputError(f"{name} could not be read as CSV: {err}", field=field) from None
    if not rows:
        raise InputError(f"{name} has a header but no data rows", field=field)
    if max_rows is not None and len(rows) > max_rows:
        raise InputError(f"{name} has {len(rows):,} rows; at most {max_rows:,} are allowed", field=field)
    return CsvData(name, columns, rows, lines)


# ---- writing -------------------------------------------------------------------------------------
# The one CSV writer for files the project offers for download (csv_text, write_csv): every cell
# goes through safe_cell, so no downloaded cell runs as a spreadsheet formula.
# OWASP "CSV injection": a spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """A CSV cell no spreadsheet runs as a formula (OWASP CSV injection guidance).

    Text that starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return, after any leading
    ``'``, gets one more ``'`` in front; numbers, and text that is only a plain number such as
    ``-0.5``, are kept as they are. :func:`original_cell` undoes it exactly.
    """
    if isinstance(value, str):
        rest = value.lstrip("'")
        if rest.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(rest):
            return "'" + value
    return value


def original_cell(text: str) -> str:
    """The value :func:`safe_cell` was given: a cell that starts with ``'``, whose text after its
    leading quotes starts with a formula character (and is not a plain number), loses one ``'``."""
    if text.startswith("'") and safe_cell(text[1:]) == text:
        return text[1:]
    return text


def csv_text(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    """CSV text of a header and rows, every cell passed through :func:`safe_cell`; ``None`` is written as
    an empty cell. Lines end in CRLF (RFC 4180), which also makes the writer quote a cell holding a lone
    carriage return (with ``\\n`` line ends it would not, and the cell would split in two)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    for row in (header, *rows) if header else rows:
        writer.writerow(["" if v is None else safe_cell(v) for v in row])
    return buf.getvalue()


def write_csv(path: str | os.PathLike[str], header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> Path:
    """Write :func:`csv_text` to ``path`` as UTF-8; returns the path."""
    p = Path(path)
    p.write_text(csv_text(header, rows), encoding="utf-8", newline="")
    return p
