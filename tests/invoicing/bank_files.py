"""Bank payment files for the tests, laid out as `PaymentFileFormatFactory` says."""

import csv
import io

HEADER = ("Bill No", "Consumer No", "Amount", "Paid On", "Channel", "Txn Ref")


def bank_csv(*rows: tuple, header: tuple = HEADER, delimiter: str = ",") -> bytes:
    """A file of `rows` (each as the header's columns) under `header`, as a bank sends it."""
    text = io.StringIO()
    writer = csv.writer(text, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue().encode()
