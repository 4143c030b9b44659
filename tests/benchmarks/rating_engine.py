"""Benchmark of the pure rating engine: the whole sample company, then 100,000 synthetic connections.

    .venv/bin/python tests/benchmarks/rating_engine.py [--synthetic 100000] [--quick]

Loads the sample's price schedule into a throw-away in-memory database (through the real import),
reads the schedules in force through the real selector, then times only the engine, on one core.
Prints bills per second and the peak memory the rating itself allocated.
"""

import argparse
import os
import random
import resource
import sys
import time
import tracemalloc
from datetime import date
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
os.environ["DATABASE_URL"] = "sqlite://:memory:"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from billing.rating import OFF_PEAK, PEAK, Usage, period_readings, rate_period, rate_usage  # noqa: E402
from billing.selectors import schedule_in_force  # noqa: E402
from providers.importing import price_schedule_import  # noqa: E402
from providers.models import ConnectionType, Provider  # noqa: E402
from tests.sample_data import CONNECTION_TYPES, SAMPLE, readings_by_connection  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--synthetic", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="10,000 synthetic bills")
    args = parser.parse_args()
    if args.quick:
        args.synthetic = 10_000

    call_command("migrate", verbosity=0)
    provider = Provider.objects.create(code="DISCO", name="Sample", city="Lahore", email="b@disco.example")
    price_schedule_import(provider=provider, data=SAMPLE)
    type_ids = dict(ConnectionType.objects.filter(provider=provider).values_list("code", "pk"))
    schedule = schedule_in_force(provider=provider, day=date(2024, 6, 30))
    by_type = {code: schedule.for_type(pk) for code, pk in type_ids.items()}

    readings = readings_by_connection()
    months = sorted({(r.at.year, r.at.month) for rs in readings.values() for r in rs})
    periods = [
        (by_type[CONNECTION_TYPES[cid]], period)
        for cid, rs in readings.items()
        for year, month in months
        if (period := period_readings(rs, year, month)) is not None
    ]

    started = time.perf_counter()
    for sched, (start, end) in periods:
        rate_period(start, end, sched, late_surcharge_percent=Decimal("10"))
    elapsed = time.perf_counter() - started
    print(f"sample company: {len(periods)} bills in {elapsed:.3f} s = {len(periods) / elapsed:,.0f} bills/s")

    rng = random.Random(20261121)
    codes = [code for code, sched in by_type.items() if sched.tariffs]  # types the sample prices
    synthetic = [
        (
            by_type[rng.choice(codes)],
            Usage(
                days=Decimal(rng.randint(28 * 1440, 31 * 1440)) / 1440,
                units={PEAK: Decimal(rng.randint(0, 5000)), OFF_PEAK: Decimal(rng.randint(0, 20000))},
                total_import=Decimal(0),
            ),
        )
        for _ in range(args.synthetic)
    ]
    synthetic = [(s, Usage(u.days, u.units, u.units[PEAK] + u.units[OFF_PEAK])) for s, u in synthetic]

    started, cpu_started = time.perf_counter(), time.process_time()
    total = Decimal(0)
    for sched, usage in synthetic:
        total += rate_usage(usage, sched, late_surcharge_percent=Decimal("10")).current_charges
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    print(
        f"synthetic: {len(synthetic):,} bills in {elapsed:.2f} s = {len(synthetic) / elapsed:,.0f} bills/s "
        f"on one core; billed {total:,.2f} in all"
    )
    per_core = len(synthetic) / cpu
    print(
        f"rating with its trace, per core (CPU time, so other programs on the machine do not count): "
        f"{per_core:,.0f} bills/s (aim >= 100,000: {'meets' if per_core >= 100_000 else 'BELOW'})"
    )
    # Memory: what rating 10,000 bills allocates at its peak (tracemalloc slows Python, so apart).
    tracemalloc.start()
    for sched, usage in synthetic[:10_000]:
        rate_usage(usage, sched, late_surcharge_percent=Decimal("10"))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"memory: engine peak while rating {peak / 1024:,.0f} KiB; whole process max RSS {rss:,.0f} MiB")


if __name__ == "__main__":
    main()
