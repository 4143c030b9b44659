"""Checks that a provider's price schedule can bill, before any of it is saved.

A schedule is sound when, on every day:
- no two rows of one kind overlap for the same connection type (tariffs: and the same bucket and
  an overlapping band; taxes and fixed charges: the same name; subsidies: the same code);
- each connection type is rated either on one `all` bucket or on both `peak` and `off_peak`;
- the bands of each bucket start at 0, follow one another with no gap or overlap, and the top one
  is open, so every consumption falls in exactly one band.
A tariff row superseded by a same-day correction ([valid_from, valid_from)) is in force on no day,
so it overlaps nothing. Rows are model instances (saved or not); no database access happens here.
Each problem names the row and says why, in words an administrator can act on.
"""

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import date, timedelta
from decimal import Decimal
from itertools import combinations, pairwise

from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from providers.models import Bucket, DatedRow, TariffRow

TIME_OF_USE = {Bucket.PEAK, Bucket.OFF_PEAK}


def _periods_overlap(a: DatedRow, b: DatedRow) -> bool:
    if a.superseded or b.superseded:
        return False
    return (b.valid_to is None or a.valid_from < b.valid_to) and (
        a.valid_to is None or b.valid_from < a.valid_to
    )


def _bands_overlap(a: TariffRow, b: TariffRow) -> bool:
    return (b.band_high is None or a.band_low < b.band_high) and (
        a.band_high is None or b.band_low < a.band_high
    )


def _closed_as_superseded(row: DatedRow) -> bool:
    """Only a price change ends a row the day it starts (it then records who closed it, and when);
    a row entered that way is a mistake."""
    return isinstance(row, TariffRow) and row.superseded and row.closed_at is not None


def _period(row: DatedRow) -> str:
    if _closed_as_superseded(row):
        return _("of %(date)s, superseded that day") % {"date": row.valid_from}
    if row.valid_to:
        return _("from %(from)s to %(to)s") % {"from": row.valid_from, "to": row.valid_to - timedelta(days=1)}
    return _("from %(from)s on, open-ended") % {"from": row.valid_from}


def number(value: Decimal) -> str:
    """0.0900 -> 0.09: figures as people write them."""
    return f"{value.normalize():f}"


def _type_name(row: DatedRow) -> str:
    return (
        _("type %(code)s") % {"code": row.connection_type.code} if row.connection_type_id else _("all types")
    )


def describe(row: DatedRow) -> str:
    name = getattr(row, "code", "") or getattr(row, "name", "") or _("new row")
    if isinstance(row, TariffRow):
        high = row.band_high if row.band_high is not None else pgettext("band", "open")
        return _("tariff %(name)s (%(type)s, %(bucket)s, band %(low)s to %(high)s, %(period)s)") % {
            "name": name,
            "type": _type_name(row),
            "bucket": row.bucket,
            "low": row.band_low,
            "high": high,
            "period": _period(row),
        }
    return _("%(kind)s %(name)s (%(type)s, %(period)s)") % {
        "kind": row._meta.verbose_name,
        "name": name,
        "type": _type_name(row),
        "period": _period(row),
    }


def _row_problems(row: DatedRow) -> list[str]:
    if row.valid_to is not None and row.valid_to <= row.valid_from and not _closed_as_superseded(row):
        return [_("%(row)s: the end must come after the start.") % {"row": describe(row)}]
    return [
        _("%(row)s: %(field)s must not be negative.")
        % {"row": describe(row), "field": field.replace("_", " ")}
        for field in ("rate", "min_units", "min_amount", "amount", "band_low", "rate_per_unit", "percent")
        if isinstance(getattr(row, field, None), Decimal) and getattr(row, field) < 0
    ]


def overlap_problems(rows: Sequence[DatedRow], key: Callable[[DatedRow], Hashable]) -> list[str]:
    """Rows of one kind with the same key must not be in force on the same day."""
    groups: dict[Hashable, list[DatedRow]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return [
        _("%(row)s overlaps %(other)s.") % {"row": describe(a), "other": describe(b)}
        for group in groups.values()
        for a, b in combinations(group, 2)
        if _periods_overlap(a, b) and (not isinstance(a, TariffRow) or _bands_overlap(a, b))
    ]


def _band_problems(day: date, bucket_rows: list[TariffRow]) -> list[str]:
    ordered = sorted(bucket_rows, key=lambda row: row.band_low)
    problems = []
    if ordered[0].band_low != 0:
        problems.append(
            _("On %(day)s, %(row)s: the lowest band must start at 0.")
            % {"day": day, "row": describe(ordered[0])}
        )
    for lower, upper in pairwise(ordered):
        if lower.band_high is not None and lower.band_high < upper.band_low:
            problems.append(
                _("On %(day)s, nothing covers %(low)s to %(high)s between %(lower)s and %(upper)s.")
                % {
                    "day": day,
                    "low": number(lower.band_high),
                    "high": number(upper.band_low),
                    "lower": describe(lower),
                    "upper": describe(upper),
                }
            )
    if ordered[-1].band_high is not None:
        problems.append(
            _("On %(day)s, %(row)s: the top band must be open (no upper limit).")
            % {"day": day, "row": describe(ordered[-1])}
        )
    return problems


def tariff_problems(rows: Iterable[TariffRow]) -> list[str]:
    rows = list(rows)
    problems = [problem for row in rows for problem in _row_problems(row)]
    problems += overlap_problems(rows, key=lambda row: (row.connection_type_id, row.bucket, row.mode))
    by_type: dict[int | None, list[TariffRow]] = defaultdict(list)
    for row in rows:
        by_type[row.connection_type_id].append(row)
    for type_rows in by_type.values():
        days = sorted({row.valid_from for row in type_rows if not row.superseded})
        for day in days:
            in_force = [row for row in type_rows if row.in_force_on(day)]
            buckets = {row.bucket for row in in_force}
            label = _type_name(in_force[0])
            if Bucket.ALL in buckets and buckets & TIME_OF_USE:
                problems.append(
                    _("On %(day)s, %(label)s has both all-hours and peak/off-peak rates; keep one kind.")
                    % {"day": day, "label": label}
                )
            elif buckets & TIME_OF_USE and not buckets >= TIME_OF_USE:
                missing = ", ".join(sorted(TIME_OF_USE - buckets))
                problems.append(
                    _("On %(day)s, %(label)s has time-of-use rates but none for %(missing)s.")
                    % {"day": day, "label": label, "missing": missing}
                )
            for bucket in sorted(buckets):
                bucket_rows = [row for row in in_force if row.bucket == bucket]
                if len({row.mode for row in bucket_rows}) > 1:
                    problems.append(
                        _("On %(day)s, %(label)s %(bucket)s mixes average-based and graduated slabs.")
                        % {"day": day, "label": label, "bucket": bucket}
                    )
                problems += _band_problems(day, bucket_rows)
    return list(dict.fromkeys(problems))


def dated_problems(rows: Iterable[DatedRow], key: Callable[[DatedRow], Hashable]) -> list[str]:
    rows = list(rows)
    return [problem for row in rows for problem in _row_problems(row)] + overlap_problems(rows, key)
