"""Benchmark of a retroactive price order's re-billing run on PostgreSQL, beside the monthly run.

    .venv/bin/python tests/benchmarks/rebilling.py [--connections 20000] [--workers 2]
        [--chunk-size 1000] [--quick] [--database rebilling_bench]

Drops and creates its own database (never `test`), and makes the billing run benchmark's provider
(billing_run.py: a time-of-use schedule of slabs, taxes, fees, a subsidy, three connection types) with N
connections, then bills last month by the monthly run in `--workers` spawned processes. A regulator's
order then raises the all-types rates by 5% from the 15th of that month: confirmed, it closes the rows
in force that day and plans a re-billing run, whose chunks the same workers take. Each affected bill is
credited in full by a credit note and issued again with its period split on the 15th (DESIGN.md
"Proration"), its customer's credit applied.

Prints, for both runs: bills, seconds, bills/s, the workers' CPU per 1,000 bills and their peak memory,
and the ratio of the re-billing run's cost per bill to the monthly run's (aim: at most 3x: a re-billed
bill is a credit note and a new bill, each with its lines and audit records). Checks that every bill the
order affects was replaced once, the credit notes took back what the old bills charged, the run had no
problems, and the audit trail verifies; exits 1 if a check fails. `--quick`: 3,000 connections.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
if not any(arg == "--database" or arg.startswith("--database=") for arg in sys.argv):
    sys.argv += ["--database", "rebilling_bench"]  # read by billing_run at import, before Django starts

import argparse
import logging
import os
import time
from datetime import timedelta
from decimal import Decimal

import billing_run as bench
from django.core.management import call_command
from django.db.models import Sum

from auditing.services import audit_verify
from invoicing.models import CreditNote, Invoice, InvoiceStatus
from invoicing.selectors import pending_chunks
from invoicing.services import price_order_confirm
from invoicing.services.rebilling import price_order_affected_bills
from providers.models import TariffRow
from providers.orders import price_order_enter
from providers.services import TariffSpec

RAISE = Decimal("1.05")


def order_rows(setup: bench.Setup) -> list[TariffSpec]:
    """The all-types rows in force mid-month, 5% dearer."""
    day = bench.PERIOD + timedelta(days=14)
    rows = TariffRow.objects.in_force_on(day).filter(provider=setup.provider, connection_type=None)
    return [
        TariffSpec(
            rate=(row.rate * RAISE).quantize(Decimal("0.0001")),
            bucket=row.bucket,
            band_low=row.band_low,
            band_high=row.band_high,
            min_units=row.min_units,
            min_amount=row.min_amount,
            slab=row.slab,
            mode=row.mode,
            code=row.code,
            description=row.description,
        )
        for row in rows
    ]


def cpu_per_thousand(reports: list[dict], bills: int) -> float:
    """CPU seconds per 1,000 bills: the workers' own and their PostgreSQL backends'."""
    return sum(report["cpu"] + report["server_cpu"] for report in reports) * 1000 / max(bills, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="3,000 connections")
    parser.add_argument("--database", default="rebilling_bench", help="dropped and created (never `test`)")
    args = parser.parse_args()
    count = 3_000 if args.quick else args.connections
    logging.getLogger("invoicing").setLevel(logging.WARNING)

    bench.recreate_database()
    call_command("migrate", verbosity=0)
    setup = bench.make_provider("REBILL")
    bench.generate(setup, count, seed=count)
    bench.analyze()
    monthly = bench.billing_run(setup, count, workers=args.workers, chunk_size=args.chunk_size, label="N")
    print(f"monthly run: {monthly.invoices:,} bills in {monthly.seconds:.1f} s")

    order = price_order_enter(
        provider=setup.provider,
        reference="NEPRA/BENCH/1",
        valid_from=bench.PERIOD + timedelta(days=14),
        connection_type=None,
        rows=order_rows(setup),
        entered_by=setup.officer,
    )
    affected = set(price_order_affected_bills(order=order).values_list("pk", flat=True))
    charged = Invoice.objects.filter(pk__in=affected).aggregate(total=Sum("current_charges"))["total"]
    started = time.perf_counter()
    run = price_order_confirm(order=order, confirmed_by=setup.officer, chunk_size=args.chunk_size)
    confirm_seconds = time.perf_counter() - started
    started = time.perf_counter()
    reports = bench.bill_chunks(pending_chunks(run), args.workers)
    rebill_seconds = time.perf_counter() - started
    run.refresh_from_db()
    print(
        f"re-billing run: {run.issued:,} bills in {rebill_seconds:.1f} s (confirming: {confirm_seconds:.1f} s)"
    )

    notes = CreditNote.objects.filter(invoice_id__in=affected)
    replaced = Invoice.objects.filter(replaces_id__in=affected)
    checks = [
        (f"the order affects bills ({len(affected):,})", bool(affected)),
        ("the run finished without problems", run.status == "completed" and run.failed == 0),
        ("every affected bill cancelled", not Invoice.objects.filter(pk__in=affected).exclude(
            status=InvoiceStatus.CANCELLED).exists()),
        ("every affected bill replaced once", replaced.count() == len(affected) == run.issued),
        ("one credit note each, for what it charged", notes.count() == len(affected)
         and notes.aggregate(total=Sum("amount"))["total"] == charged == run.credited_amount),
        ("no affected bill left", not price_order_affected_bills(order=order).exists()),
        ("the audit trail verifies", not audit_verify()),
    ]  # fmt: skip

    monthly_cost = cpu_per_thousand(monthly.workers, monthly.invoices)
    rebill_cost = cpu_per_thousand(reports, run.issued)
    ratio = rebill_cost / monthly_cost
    rule = "-" * 96
    print()
    print(
        f"Re-billing benchmark: {os.cpu_count()} CPUs, {args.workers} workers, chunks of {args.chunk_size:,}, "
        f"order from {order.valid_from} (+5% on the all-types rows)"
    )
    print(rule)
    print(
        f"{'':26}{'bills':>10}{'seconds':>10}{'bills/s':>10}{'CPU s / 1,000 bills':>22}{'worker peak RSS':>18}"
    )
    rows = (
        ("monthly run", monthly.invoices, monthly.seconds, monthly_cost, monthly.worker_peak),
        ("re-billing run", run.issued, rebill_seconds, rebill_cost, max(r["peak"] for r in reports)),
    )
    for label, bills, seconds, cost, peak in rows:
        print(
            f"{label:26}{bills:>10,}{seconds:>10.2f}{bills / seconds:>10,.0f}{cost:>22.2f}{bench.mib(peak):>18}"
        )
    print(rule)
    print(f"re-billing / monthly run, CPU per bill: {ratio:.2f}x (aim <= 3x: {bench.aim(ratio <= 3)})")
    for label, passed in checks:
        print(f"check: {label}: {'ok' if passed else 'FAILED'}")
    if not all(passed for _, passed in checks):
        sys.exit(1)


if __name__ == "__main__":
    main()
