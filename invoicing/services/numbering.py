"""Gapless document numbers: a counter row per provider, series and year.

Taking numbers is one statement (an upsert that makes the year's row on its first number and adds to
it after), and the row it writes stays locked until the document's transaction commits: a rollback
gives the numbers back, so numbers have no gaps. Every writer of a series waits for that lock, so
callers take their numbers as late in their transaction as they can.
"""

from django.db import connection

from invoicing.models import DocumentCounter, DocumentSeries
from providers.models import Provider

SERIES_FORMAT = {
    DocumentSeries.INVOICE: "{code}-{year}-{n:06d}",
    DocumentSeries.RECEIPT: "{code}-PAY-{year}-{n:06d}",
    DocumentSeries.ADJUSTMENT: "{code}-ADJ-{year}-{n:06d}",
    DocumentSeries.DISCONNECTION: "{code}-DO-{year}-{n:06d}",
    DocumentSeries.REVERSAL: "{code}-RV-{year}-{n:06d}",
    DocumentSeries.CREDIT_NOTE: "{code}-CN-{year}-{n:06d}",
    DocumentSeries.REFUND: "{code}-RF-{year}-{n:06d}",
}
_TABLE = DocumentCounter._meta.db_table


def take_numbers(*, provider: Provider, series: str, year: int, count: int) -> list[str]:
    """The next `count` numbers of a series; the counter row stays locked until the caller commits."""
    if count == 0:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {_TABLE} (provider_id, series, year, last) VALUES (%s, %s, %s, %s)
                ON CONFLICT (provider_id, series, year) DO UPDATE SET last = {_TABLE}.last + excluded.last
                RETURNING last""",  # noqa: S608 (our own table's name)
            [provider.pk, series, year, count],
        )
        (last,) = cursor.fetchone()
    pattern = SERIES_FORMAT[series]
    return [pattern.format(code=provider.code, year=year, n=n) for n in range(last - count + 1, last + 1)]
