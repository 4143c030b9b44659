"""Benchmark of payments on PostgreSQL: payments per second on distinct bills with 1, 2 and 4 processes,
beside pgbench's TPC-B with as many clients in the same run, and the statements of one payment.

    .venv/bin/python tests/benchmarks/payments.py [--connections 20000] [--seconds 15] [--quick]
        [--database pay_bench]

Drops and creates its own database (`pay_bench`; pgbench's tables in `pay_bench_pgbench`), migrates it,
generates one provider's connections (tests/benchmarks/billing_run.py's generator: the same schedule,
customers and readings) and bills them with the real billing run. Then, for each number of processes,
pgbench's TPC-B runs with that many clients (scale 4: a branch row per client, so pgbench's own hot rows
do not serialise it), then that many processes post payments through `payment_post` for as long, in
three turns taken alternately with pgbench's (so that the machine's other load weighs on both alike).
Each process pays bills of its own (no two payments on one bill, each with an Idempotency-Key, in a
request's context: an officer acting as Super_Creator; the bills read first as the endpoint reads them).
Every payment of the provider still waits for the one before it to commit at the receipt counter
(gapless numbers per provider and year): what the figure measures, beside what PostgreSQL does with no
such row.

Checks afterwards: one receipt per payment, numbered 1..M without gaps, every payment's allocations
adding up to it, and the provider's audit trail verifying. Statements per payment are counted by Django
over a sample, the transaction's own BEGIN and COMMIT left out (as tests/invoicing/test_payment_queries.py
counts them).
Prints each figure beside its aim; exits 1 if a check fails. `--quick`: 7,500 connections, 6 s a phase.
"""

import argparse
import glob
import importlib
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

if "--database" not in " ".join(sys.argv):
    sys.argv += ["--database", "pay_bench"]
os.environ.setdefault("CELERY_QUEUE", f"bench-pay-{uuid.uuid4().hex[:8]}")  # nothing is sent: no addresses
# Sets Django up on the benchmark's database (it reads --database), before anything imports a model.
bench = importlib.import_module("tests.benchmarks.billing_run")

import psycopg  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection as db  # noqa: E402
from django.db import connections  # noqa: E402
from django.db.models import Count, Sum  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from accounts.roles import Role  # noqa: E402
from auditing.services import audit_verify  # noqa: E402
from config import context  # noqa: E402
from invoicing.models import Invoice, Payment, PaymentMethod  # noqa: E402
from invoicing.selectors import invoice_list_for  # noqa: E402
from invoicing.services import payment_post  # noqa: E402

PROCESSES = (1, 2, 4)
ROUNDS = 3
PGBENCH_SCALE = 4
AMOUNT = Decimal("10.00")  # every bill owes more: partial payments, each settling its bill alone
STATEMENTS_SAMPLE = 50


def pgbench_binary() -> str:
    found = shutil.which("pgbench") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))), None
    )
    if found is None:
        sys.exit("pgbench not found (PATH or /usr/lib/postgresql/*/bin)")
    return found


def pgbench_database() -> str:
    name = f"{bench.DATABASE}_pgbench"
    with psycopg.connect(f"{bench.SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [pgbench_binary(), "-i", "-q", "-s", str(PGBENCH_SCALE), "-h", "127.0.0.1", "-U", "postgres", name],
        check=True,
        capture_output=True,
    )
    return name


def pgbench_tps(database: str, clients: int, seconds: int) -> float:
    run = ("-n", "-c", str(clients), "-j", str(clients), "-T", str(seconds))
    done = subprocess.run(
        [pgbench_binary(), *run, "-h", "127.0.0.1", "-U", "postgres", database],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(re.search(r"tps = ([0-9.]+)", done.stdout).group(1))


def payer(
    index: int, bill_ids: list[int], officer_id: int, method_id: int, seconds: float, start, results
) -> None:
    """Pay bills of its own, one payment each, until the phase's time is up; report how many and when."""
    connections.close_all()  # never use the parent's socket
    officer = bench.User.objects.get(pk=officer_id)
    method = PaymentMethod.objects.get(pk=method_id)
    bills = bills_as_the_api_reads_them(bill_ids, officer)
    start.wait()
    began = time.perf_counter()
    paid = 0
    for bill in bills:
        if time.perf_counter() - began >= seconds:
            break
        context.bind(request_id=context.new_request_id())
        payment_post(
            invoice=bill,
            amount=AMOUNT,
            method=method,
            received_by=officer,
            idempotency_key=f"bench-{index}-{bill.pk}",
        )
        paid += 1
    ended = time.perf_counter()
    connections.close_all()
    results.put({"paid": paid, "began": began, "ended": ended, "ran_out": paid == len(bills)})


def pay_together(
    bill_ids: list[int], processes: int, seconds: float, officer_id: int, method_id: int
) -> dict:
    connections.close_all()
    forked = multiprocessing.get_context("fork")
    start, results = forked.Event(), forked.Queue()
    shares = [bill_ids[i::processes] for i in range(processes)]
    workers = [
        forked.Process(target=payer, args=(i, share, officer_id, method_id, seconds, start, results))
        for i, share in enumerate(shares)
    ]
    for worker in workers:
        worker.start()
    time.sleep(1.0)  # every process connected and holding its bills
    start.set()
    reports = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
        if worker.exitcode:
            sys.exit(f"a paying process failed (exit code {worker.exitcode})")
    paid = sum(report["paid"] for report in reports)
    elapsed = max(r["ended"] for r in reports) - min(r["began"] for r in reports)
    return {
        "paid": paid,
        "seconds": elapsed,
        "rate": paid / elapsed,
        "ran_out": any(r["ran_out"] for r in reports),
    }


def bills_as_the_api_reads_them(bill_ids: list[int], officer) -> list[Invoice]:
    """The bills as POST /api/payments reads each before it calls the service (through the selector,
    with their relations), in a request's context: an officer acting as Super_Creator."""
    officer.active_role = Role.SUPER_CREATOR
    context.bind(actor_id=officer.pk, role=Role.SUPER_CREATOR, provider_id=officer.provider_id)
    return list(invoice_list_for(user=officer, perm="invoicing.collect_payment").filter(pk__in=bill_ids))


def statements_per_payment(bill_ids: list[int], officer, method) -> float:
    bills = bills_as_the_api_reads_them(bill_ids, officer)
    with CaptureQueriesContext(db) as captured:
        for bill in bills:
            payment_post(
                invoice=bill,
                amount=AMOUNT,
                method=method,
                received_by=officer,
                idempotency_key=f"count-{bill.pk}",
            )
    statements = [query for query in captured.captured_queries if query["sql"] not in ("BEGIN", "COMMIT")]
    return len(statements) / len(bills)


def checks(provider) -> list[tuple[str, bool]]:
    payments = Payment.objects.filter(provider=provider)
    count = payments.count()
    numbers = sorted(
        int(number.rsplit("-", 1)[1]) for number in payments.values_list("receipt_number", flat=True)
    )
    mismatched = (
        payments.annotate(allocated=Sum("allocations__amount"), settled=Count("allocations"))
        .exclude(allocated=AMOUNT, settled=1)
        .count()
    )
    return [
        (
            f"{count:,} payments, receipts numbered 1..{count:,} without gaps",
            numbers == list(range(1, count + 1)),
        ),
        ("every payment's allocations add up to it", mismatched == 0),
        ("the provider's audit trail verifies", audit_verify(chain=provider.pk) == []),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=20_000, help="bills to pay (each paid once)")
    parser.add_argument("--seconds", type=int, default=15, help="of each phase, pgbench's and the payments'")
    parser.add_argument("--quick", action="store_true", help="7,500 connections, 6 s a phase")
    parser.add_argument("--database", default="pay_bench", help="dropped and created (never `test`)")
    args = parser.parse_args()
    if args.quick:
        args.connections, args.seconds = 7_500, 6
    load_before = os.getloadavg()
    began = time.perf_counter()
    bench.recreate_database()
    call_command("migrate", verbosity=0)
    setup = bench.make_provider("PAY")
    bench.generate(setup, args.connections, seed=7, emails=False)
    bench.analyze()
    bench.billing_run(setup, args.connections, workers=2, chunk_size=1000, label="bills to pay")
    bench.analyze()
    pgbench_db = pgbench_database()
    method = PaymentMethod.objects.get_or_create(
        code="bank-counter", defaults={"name": "Paid at Bank Counter"}
    )[0]
    bill_ids = list(
        Invoice.objects.filter(provider=setup.provider).order_by("?").values_list("pk", flat=True)
    )
    statements = statements_per_payment(bill_ids[:STATEMENTS_SAMPLE], setup.officer, method)
    rest = bill_ids[STATEMENTS_SAMPLE:]
    phases = []
    # Each phase on bills of its own; pgbench and the payments take turns, ROUNDS times, so that what
    # else the machine does meanwhile weighs on both alike.
    turn_seconds = max(args.seconds // ROUNDS, 1)
    for phase, processes in enumerate(PROCESSES):
        bills, tps_turns, turns = rest[phase :: len(PROCESSES)], [], []
        for turn in range(ROUNDS):
            tps_turns.append(pgbench_tps(pgbench_db, processes, turn_seconds))
            turns.append(
                pay_together(bills[turn::ROUNDS], processes, turn_seconds, setup.officer.pk, method.pk)
            )
        paid, seconds = sum(t["paid"] for t in turns), sum(t["seconds"] for t in turns)
        result = {
            "paid": paid,
            "seconds": seconds,
            "rate": paid / seconds,
            "ran_out": any(t["ran_out"] for t in turns),
        }
        tps = sum(tps_turns) / ROUNDS
        phases.append((processes, tps, result))
        print(f"{processes} process(es): {result['rate']:,.0f} payments/s; pgbench {tps:,.0f} tps")
    verdicts = checks(setup.provider)
    total = time.perf_counter() - began

    with db.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (server_version,) = cursor.fetchone()
        cursor.execute("SHOW synchronous_commit")
        (synchronous,) = cursor.fetchone()
    rule = "-" * 92
    print()
    print(
        f"Payments benchmark: PostgreSQL {server_version} (synchronous_commit {synchronous}), "
        f"{os.cpu_count()} CPUs, {args.connections:,} bills, {args.seconds} s a phase, database {bench.DATABASE}"
    )
    print(rule)
    print(
        f"{'processes':>10}{'payments':>10}{'seconds':>10}{'payments/s':>12}{'pgbench tps':>13}{'ratio':>8}  aim"
    )
    one = phases[0][2]["rate"]
    for processes, tps, result in phases:
        ratio = result["rate"] / tps
        print(
            f"{processes:>10}{result['paid']:>10,}{result['seconds']:>10.2f}{result['rate']:>12,.0f}{tps:>13,.0f}"
            f"{ratio:>8.2f}  >= 0.20 of pgbench: {bench.aim(ratio >= 0.20)}"
            + ("  (ran out of bills: raise --connections)" if result["ran_out"] else "")
        )
    print(rule)
    for processes, _, result in phases[1:]:
        print(f"{processes} processes / 1 process: {result['rate'] / one:.2f}x (scales with processes)")
    print(f"statements per payment: {statements:.1f} (aim <= 12: {bench.aim(statements <= 12)})")
    print(
        f"machine load average before the run: {', '.join(f'{load:.2f}' for load in load_before)} "
        "(other processes on these cores lower every figure)"
    )
    print(f"whole benchmark {total:.0f} s")
    failed = False
    for description, ok in verdicts:
        print(f"check: {description}: {'ok' if ok else 'FAILED'}")
        failed = failed or not ok
    with psycopg.connect(f"{bench.SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{pgbench_db}" WITH (FORCE)')
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
