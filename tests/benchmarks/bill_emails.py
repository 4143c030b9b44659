"""Benchmark of the bill e-mails on the billing run's path, on PostgreSQL and Redis: recording and handing
over 100,000 of them (not sending them), and the billing run with and without them.

    .venv/bin/python tests/benchmarks/bill_emails.py [--connections 100000] [--workers 2]
        [--chunk-size 1000] [--broker redis://127.0.0.1:6379/0] [--database billing_bench_mail]

Drops and creates its own database (as tests/benchmarks/billing_run.py does, whose provider, synthetic
connections and worker processes it reuses) and sends to a Celery queue of its own on `--broker`,
which no worker reads and which is emptied at the end.

1. The billing run of N connections whose customers gave no e-mail address (nothing is recorded), then
   of N others whose customers did (a message per bill, recorded in each chunk's transaction and handed
   over in one task when it commits). The difference in bills per second is what the e-mails cost the run.
2. The hand-over alone, timed: the first run's customers are given addresses, and its N bills are told
   of chunk by chunk as a chunk tells of its bills (`invoices_notify`, in the chunk's transaction: the
   database writes the messages from the bills and their customers); the commit then hands the ids
   to the queue in one fan-out task. Timed: the rows, and the commit with the hand-over.

Prints the figures and checks (N rows, one fan-out task per chunk on the queue, the runs' own checks);
exits 1 if a check fails.
"""

import argparse
import importlib
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def _argument(name: str, default: str) -> str:
    """An argument needed before Django is set up (its settings read the broker from the environment)."""
    for index, arg in enumerate(sys.argv):
        if arg == name and index + 1 < len(sys.argv):
            return sys.argv[index + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    return default


if "--database" not in " ".join(sys.argv):
    sys.argv += ["--database", "billing_bench_mail"]
QUEUE = f"bench-mail-{uuid.uuid4().hex[:8]}"  # no worker reads it; purged at the end
os.environ["CELERY_BROKER_URL"] = _argument("--broker", "redis://127.0.0.1:6379/0")
os.environ["CELERY_QUEUE"] = QUEUE
# Sets Django up on the benchmark's database (it reads --database), before anything imports a model.
bench = importlib.import_module("tests.benchmarks.billing_run")

from django.core.management import call_command  # noqa: E402
from django.db import connection as db  # noqa: E402
from django.db import transaction  # noqa: E402
from django.db.models import F, Value  # noqa: E402
from django.db.models.functions import Concat  # noqa: E402

from accounts.models import Message, MessageKind  # noqa: E402
from billing.models import Customer  # noqa: E402
from config.celery import app as celery_app  # noqa: E402
from invoicing.models import Invoice  # noqa: E402
from invoicing.services import invoices_notify  # noqa: E402


def queued_tasks() -> int:
    with celery_app.connection_for_write() as broker:
        return broker.default_channel.client.llen(QUEUE)


def hand_over(setup: "bench.Setup", chunk_size: int) -> dict:
    """Tell of every bill of the provider again, chunk by chunk, its customers given an address first."""
    Customer.objects.filter(provider=setup.provider).update(
        email=Concat(F("number"), Value("@customers.example"))
    )
    bills = list(Invoice.objects.filter(provider=setup.provider).order_by("pk").only("pk"))
    tasks_before = queued_tasks()
    rows_seconds = commit_seconds = 0.0
    for start in range(0, len(bills), chunk_size):
        began = time.perf_counter()
        with transaction.atomic():
            invoices_notify(
                kind=MessageKind.BILL_ISSUED, invoices=bills[start : start + chunk_size], told_before=False
            )
            recorded = time.perf_counter()
        committed = time.perf_counter()  # the commit, then the hand-over to Redis (on_commit)
        rows_seconds += recorded - began
        commit_seconds += committed - recorded
    return {
        "count": len(bills),
        "chunks": -(-len(bills) // chunk_size),
        "rows": rows_seconds,
        "commit": commit_seconds,
        "messages": Message.objects.filter(provider=setup.provider).count(),
        "tasks": queued_tasks() - tasks_before,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=100_000, help="of each billing run, and e-mails")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=1000)
    parser.add_argument(
        "--broker", default="redis://127.0.0.1:6379/0", help="a Redis; a queue of our own on it"
    )
    parser.add_argument("--database", default="billing_bench_mail", help="dropped and created (never `test`)")
    parser.add_argument("--quick", action="store_true", help="5,000 connections")
    args = parser.parse_args()
    if args.quick:
        args.connections = 5_000
    # The benchmark runs on the test settings, whose tasks run in the caller: here they go to Redis.
    celery_app.conf.task_always_eager = False
    load_before = os.getloadavg()
    bench.recreate_database()
    call_command("migrate", verbosity=0)

    runs = []
    for code, emails in (("QUIET", False), ("TOLD", True)):
        setup = bench.make_provider(code)
        bench.generate(setup, args.connections, seed=1, emails=emails)
        bench.analyze()
        result = bench.billing_run(
            setup, args.connections, workers=args.workers, chunk_size=args.chunk_size, label=code
        )
        runs.append((setup, result, Message.objects.filter(provider=setup.provider).count()))
    handed = hand_over(runs[0][0], args.chunk_size)
    total = handed["rows"] + handed["commit"]
    celery_app.control.purge()

    with db.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (server_version,) = cursor.fetchone()
    per_chunk = total * 1000 / handed["chunks"]
    print()
    print(
        f"Bill e-mails benchmark: PostgreSQL {server_version}, Redis at {args.broker}, {os.cpu_count()} CPUs, "
        f"chunks of {args.chunk_size:,}, database {bench.DATABASE}"
    )
    print("-" * 100)
    print(
        f"{handed['count']:,} bill e-mails recorded and handed to the queue in {total:.2f} s "
        f"({handed['count'] / total:,.0f} a second): rows {handed['rows']:.2f} s, commit and hand-over "
        f"{handed['commit']:.2f} s; {per_chunk:.1f} ms per chunk of {args.chunk_size:,} bills"
    )
    quiet, with_emails = runs[0][1], runs[1][1]
    for _, result, messages in runs:
        print(
            f"billing run of {result.connections:,} ({'with' if messages else 'without'} e-mails, "
            f"{messages:,} recorded): {result.seconds:.2f} s = {result.rate:,.0f} bills/s"
        )
    print(
        f"the e-mails cost the run {100 * (1 - with_emails.rate / quiet.rate):+.1f}% of its rate "
        "(two runs on a shared machine: a few percent either way is noise)"
    )
    print(f"machine load average before: {', '.join(f'{load:.2f}' for load in load_before)}")
    checks = [
        (f"a message row per bill ({handed['messages']:,})", handed["messages"] == handed["count"]),
        (
            f"one fan-out task per chunk on the queue ({handed['tasks']:,})",
            handed["tasks"] == handed["chunks"],
        ),
        (f"no e-mail recorded for customers without an address ({runs[0][2]})", runs[0][2] == 0),
        (
            f"an e-mail per bill of the run with addresses ({runs[1][2]:,})",
            runs[1][2] == with_emails.invoices,
        ),
        *((f"{result.label}: {text}", ok) for _, result, _ in runs for text, ok in result.checks),
    ]
    failed = False
    for description, ok in checks:
        failed |= not ok
        print(f"check: {'ok  ' if ok else 'FAIL'} {description}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
