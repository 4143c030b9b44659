"""Where a bill's period starts and ends. Pure: plain values in, no ORM and no clock.

Continuity: a bill's period starts where the connection's previous (non-cancelled) bill ended, at the
registers that bill closed at, so consecutive bills cover every moment exactly once, whatever came
between them (a final bill to a mid-month reading, a month left unbilled). With no earlier bill to
continue from (none, or one of typed kWh, which has no ends) it starts at the last reading of the
month before, or, for a connection connected within the month (no reading in the month before), at
its first reading. It ends at the month's last reading (or at the last reading up to a moment the
caller names: a final bill to a mid-month reading).
"""

from collections.abc import Sequence
from datetime import datetime

from billing.rating import Reading


def month_before(year: int, month: int) -> tuple[int, int]:
    return (year, month - 1) if month > 1 else (year - 1, 12)


def period_ends(
    readings: Sequence[Reading],
    year: int,
    month: int,
    *,
    previous: Reading | None = None,
    until: datetime | None = None,
) -> tuple[Reading | None, Reading | None]:
    """The period's opening and closing readings, either None when there is none.

    `readings`: the connection's readings of the month and the month before, in local time, any order.
    `previous`: where the previous bill ended (its moment and closing registers), if it has ends.
    `until`: only readings up to this moment count (a final bill).
    """
    before = month_before(year, month)
    last_before = first_in = last_in = None
    for reading in readings:
        at = reading.at
        if until is not None and at > until:
            continue
        key = (at.year, at.month)
        if key == (year, month):
            if first_in is None or at < first_in.at:
                first_in = reading
            if last_in is None or at > last_in.at:
                last_in = reading
        elif key == before and (last_before is None or at > last_before.at):
            last_before = reading
    start = previous or last_before or first_in
    if start is None or last_in is None or last_in.at <= start.at:
        return start, None
    return start, last_in
