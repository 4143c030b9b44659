"""Gapless document numbers: a locked counter row per provider, series and year.

The row stays locked from the moment a number is taken until the document's transaction commits: a
rollback gives the number back, so numbers have no gaps.
"""

from django.db.models import F

from invoicing.models import DocumentCounter, DocumentSeries
from providers.models import Provider

SERIES_FORMAT = {
    DocumentSeries.INVOICE: "{code}-{year}-{n:06d}",
    DocumentSeries.RECEIPT: "{code}-PAY-{year}-{n:06d}",
    DocumentSeries.ADJUSTMENT: "{code}-ADJ-{year}-{n:06d}",
    DocumentSeries.DISCONNECTION: "{code}-DO-{year}-{n:06d}",
}


def take_numbers(*, provider: Provider, series: str, year: int, count: int) -> list[str]:
    """The next `count` numbers of a series; the counter row stays locked until the caller commits."""
    if count == 0:
        return []
    counter, _ = DocumentCounter.objects.select_for_update().get_or_create(
        provider=provider, series=series, year=year
    )
    first = counter.last + 1
    DocumentCounter.objects.filter(pk=counter.pk).update(last=F("last") + count)
    pattern = SERIES_FORMAT[series]
    return [pattern.format(code=provider.code, year=year, n=n) for n in range(first, first + count)]
