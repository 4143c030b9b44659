"""CSV files people open in a spreadsheet."""

import csv
import io
from collections.abc import Iterable


class CsvEcho:
    """A file for `csv.writer` that hands each row back, to be streamed rather than held in memory."""

    def write(self, value: str) -> str:
        return value


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: str) -> str:
    # A spreadsheet runs a cell that starts like a formula: a customer's name must stay a name.
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def csv_document(rows: Iterable[tuple]) -> str:
    """Rows as one CSV text; every text cell made safe to open (numbers and dates are left as they are)."""
    out = io.StringIO()
    csv.writer(out).writerows(
        tuple(csv_text(cell) if isinstance(cell, str) else cell for cell in row) for row in rows
    )
    return out.getvalue()
