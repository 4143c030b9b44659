"""How a billing run is cut into chunks of connections, the monthly run's and a price order's alike."""

from collections.abc import Iterable

from invoicing.models import BillingRun, BillingRunChunk

DEFAULT_CHUNK_SIZE = 1000


def plan_chunks(run: BillingRun, ids: Iterable[int], chunk_size: int) -> Iterable[BillingRunChunk]:
    """Chunks of `chunk_size` consecutive ids; only their bounds are kept, whatever the number of ids."""
    index = first = last = size = 0
    for pk in ids:
        if size == 0:
            first = pk
        last, size = pk, size + 1
        if size == chunk_size:
            yield BillingRunChunk(run=run, index=index, first_id=first, last_id=last, size=size)
            index, size = index + 1, 0
    if size:
        yield BillingRunChunk(run=run, index=index, first_id=first, last_id=last, size=size)
