"""Benchmark of the monthly billing run on PostgreSQL: 100,000 synthetic connections, then a naive loop.

    .venv/bin/python tests/benchmarks/billing_run.py [--connections 100000] [--workers 2]
        [--chunk-size 1000] [--sample 2000] [--copy-sample 20000] [--scaling] [--quick]
        [--database billing_bench]

Drops and creates its own database (`billing_bench` on postgres@127.0.0.1:5432; never `test`,
`test_test` or `postgres`), migrates it, and generates one provider with a time-of-use schedule
(peak and off-peak rows of three average-based slabs, a commercial type with two slabs of its own,
GST 17% and Electricity Duty 1.5%, meter rent and TV fee, a usage-band subsidy for residential
connections) and N connections, each with its customer, user and two readings (the last days of the
month before last and of last month, varied usage, a few with solar export), written with COPY.

Then the real billing run bills last month: `billing_run_start`, and `billing_run_chunk_bill` for every
chunk, in `--workers` forked processes taking chunk ids from one queue. It writes invoices, their
lines and numbers, and the audit trail's record of each invoice (written by the receiver of
`billing.signals.rows_bulk_created`, hash-chained, inside each chunk's transaction, so it is timed too).
The counts are checked: N invoices, numbers 1..N without gaps, one line per energy bucket, tax, fee
and applied subsidy, and the lines of every invoice add up to its current charges.

In the same run, a naive loop bills `--sample` fresh connections of the same provider the way a
straightforward implementation would: one connection at a time, each in its own transaction, the
counter row locked with `select_for_update`, the invoice and then each line saved through the ORM.
It uses the same engine, the same invoice content and the schedule read once (a generous naive).

The same N are billed first by one worker (another provider of the same shape), so the gain of the
workers is measured in the same run. Then up to `--copy-sample` of the run's bills, with their lines,
audit records and e-mails, are written again with plain COPY by as many processes, a chunk per
transaction, into empty tables like the real ones (indexes, constraints and foreign keys): what
PostgreSQL can write on this machine at best, the yardstick of the run's write path.

Memory: the run works chunk by chunk, so a worker's peak should depend on the chunk size, not on N.
Workers are fresh processes (spawned, as Celery's are) and report their own peak RSS; `--scaling`
first runs a second provider of N/5 connections, so the two peaks can be compared.
Prints each figure beside its aim (the run against COPY, against the naive loop, two workers against
one, the workers' peak memory) and the checks; exits 1 if a check fails. `--quick`: 5,000 connections.
"""

import argparse
import logging
import multiprocessing
import os
import queue as queue_module
import random
import resource
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SERVER = "postgres://postgres@127.0.0.1:5432"
PROTECTED = {"test", "test_test", "postgres", "template0", "template1"}


def _database_from_argv() -> str:
    """The database name must be known before Django is set up (its settings read DATABASE_URL)."""
    for index, arg in enumerate(sys.argv):
        if arg == "--database" and index + 1 < len(sys.argv):
            return sys.argv[index + 1]
        if arg.startswith("--database="):
            return arg.split("=", 1)[1]
    return "billing_bench"


DATABASE = _database_from_argv()
if DATABASE in PROTECTED or not DATABASE.replace("_", "").isalnum():
    sys.exit(f"Refusing to drop and create the database {DATABASE!r}; choose a name of its own.")
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
os.environ["DATABASE_URL"] = f"{SERVER}/{DATABASE}"
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "0")  # the bill retrieval benchmark keeps them
# The run hands its bill e-mails to a broker, as in production: a queue of its own that no worker reads
# (purged at the end). Eager tasks would render every bill's PDF inside the run.
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("CELERY_QUEUE", f"bench-run-{os.getpid()}")

import psycopg  # noqa: E402


def recreate_database() -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DATABASE}"')


import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection as db  # noqa: E402
from django.db import connections, transaction  # noqa: E402
from django.db.models import Sum  # noqa: E402

from accounts.models import Message, User, UserRole  # noqa: E402
from accounts.roles import Role  # noqa: E402
from accounts.services import user_create  # noqa: E402
from auditing.models import AuditLog  # noqa: E402
from auditing.services import audit_verify  # noqa: E402
from billing.models import (  # noqa: E402
    ConnectionStatus,
    Customer,
    CustomerKind,
    MeterReading,
    ReadingSource,
    ServiceConnection,
)
from billing.months import month_end, previous_month  # noqa: E402
from billing.rating import NO_MONEY, period_readings, rate_usage, usage_between  # noqa: E402
from billing.selectors import readings_for_period, schedule_in_force  # noqa: E402
from config.bulk import insert_values  # noqa: E402
from config.celery import app as celery_app  # noqa: E402
from invoicing.models import (  # noqa: E402
    OPEN_STATUSES,
    BillingRun,
    DocumentCounter,
    DocumentSeries,
    Invoice,
    InvoiceLine,
    InvoiceSource,
)
from invoicing.selectors import pending_chunks  # noqa: E402
from invoicing.services import (  # noqa: E402
    SERIES_FORMAT,
    billing_run_chunk_bill,
    billing_run_start,
)
from invoicing.services.issue import build_invoice, issue_terms  # noqa: E402
from providers.models import (  # noqa: E402
    Bucket,
    FixedCharge,
    Provider,
    Subsidy,
    SubsidyBasis,
    TariffRow,
    TaxRule,
)
from providers.services import authority_create, connection_type_create, provider_create  # noqa: E402

# The test settings run tasks in the caller: here the bill e-mails go to the benchmark's own queue (set
# at import, so the spawned workers do the same).
celery_app.conf.task_always_eager = False
ZONE = ZoneInfo(settings.TIME_ZONE)
PERIOD = previous_month(datetime.now(ZONE).date())  # the month a run started today bills
SCHEDULE_FROM = date(PERIOD.year - 1, 1, 1)
UNUSABLE_PASSWORD = "!benchmark-user-cannot-sign-in"
MIB = 1024  # ru_maxrss and /proc are in KiB
USER_FIELDS = (
    *("id", "password", "is_superuser", "email", "name", "phone", "address", "designation"),
    *("provider_id", "is_active", "is_staff", "created_at", "updated_at"),
)
# The customer's own contact details; language, notification choices and national id as the defaults.
CUSTOMER_FIELDS = (
    *("id", "provider_id", "user_id", "number", "name", "email", "phone", "address", "kind", "organisation"),
    *("created_at", "updated_at", "national_id", "preferred_language"),
    *("notify_bills", "notify_reminders", "notify_payments"),
)
CONNECTION_FIELDS = (
    *("id", "provider_id", "customer_id", "number", "connection_type_id", "meter_number", "meter_type"),
    *("division", "subdivision", "installation_date", "status", "declared_monthly_income", "created_at"),
)
READING_FIELDS = (
    *("provider_id", "connection_id", "taken_at", *MeterReading.REGISTERS),
    *("meter_replaced", "source", "created_at"),
)


# --- the provider and its schedule ---------------------------------------------------------------


@dataclass
class Setup:
    provider: Provider
    officer: User
    types: list[tuple[int, str, float]]  # (id, kind, share of connections)


def make_provider(code: str) -> Setup:
    """A provider with three connection types and a realistic time-of-use schedule."""
    provider = provider_create(code=code, name=f"{code} Electric Supply", city="Lahore", email="b@x.example")
    officer = user_create(
        email=f"officer@{code.lower()}.example",
        name="Billing Officer",
        provider=provider,
        roles=[Role.SUPER_CREATOR],
        designation="Billing Officer",
    )
    residential = connection_type_create(
        provider=provider, code="A-1", description="Residential 5 kW", sanctioned_load_kw=Decimal(5)
    )
    commercial = connection_type_create(
        provider=provider, code="A-2", description="Commercial 20 kW", sanctioned_load_kw=Decimal(20)
    )
    industrial = connection_type_create(
        provider=provider, code="B-1", description="Industrial 100 kW", sanctioned_load_kw=Decimal(100)
    )
    fbr = authority_create(provider=provider, code="FBR", name="Federal Board of Revenue")
    punjab = authority_create(provider=provider, code="GOP", name="Government of Punjab")
    ptv = authority_create(provider=provider, code="PTV", name="Pakistan Television")
    own = authority_create(provider=provider, code=code, name=provider.name)
    dated = {"provider": provider, "valid_from": SCHEDULE_FROM, "created_by": officer}

    def slabs(bucket: str, rates: list[str], bands: list[str], connection_type=None, min_amount="0"):
        rows = []
        for slab, rate in enumerate(rates, start=1):
            high = bands[slab - 1] if slab <= len(bands) else None
            rows.append(
                TariffRow(
                    **dated,
                    connection_type=connection_type,
                    code=f"{'C' if connection_type else 'G'}-{bucket}-{slab}",
                    bucket=bucket,
                    slab=slab,
                    band_low=Decimal(bands[slab - 2]) if slab > 1 else Decimal(0),
                    band_high=Decimal(high) if high else None,
                    rate=Decimal(rate),
                    min_amount=Decimal(min_amount) if slab == 1 else Decimal(0),
                )
            )
        return rows

    TariffRow.objects.bulk_create(
        [
            # Every type without rows of its own: three slabs by average kWh per hour.
            *slabs(Bucket.PEAK, ["41.6800", "47.2000", "53.9000"], ["0.25", "0.75"], min_amount="75"),
            *slabs(Bucket.OFF_PEAK, ["33.1000", "37.4500", "42.0000"], ["0.5", "1.5"], min_amount="75"),
            # Commercial: two slabs of its own.
            *slabs(Bucket.PEAK, ["58.5000", "62.1000"], ["1.0"], commercial, min_amount="500"),
            *slabs(Bucket.OFF_PEAK, ["44.2000", "47.8000"], ["2.0"], commercial, min_amount="500"),
        ]
    )
    TaxRule.objects.bulk_create(
        [
            TaxRule(**dated, name="GST", authority=fbr, rate=Decimal("0.17")),
            TaxRule(**dated, name="Electricity Duty", authority=punjab, rate=Decimal("0.015")),
        ]
    )
    FixedCharge.objects.bulk_create(
        [
            FixedCharge(**dated, name="Meter rent", authority=own, amount=Decimal("25.00")),
            FixedCharge(**dated, name="TV fee", authority=ptv, amount=Decimal("35.00")),
        ]
    )
    Subsidy.objects.create(
        **dated,
        connection_type=residential,
        code="PROTECTED-200",
        description="Protected residential users: under 200 units a month",
        payer=punjab,
        basis=SubsidyBasis.USAGE,
        band_low=Decimal(0),
        band_high=Decimal("0.2778"),  # 200 kWh in 30 days
        rate_per_unit=Decimal("7.5000"),
    )
    return Setup(
        provider,
        officer,
        [(residential.pk, "R", 0.75), (commercial.pk, "C", 0.18), (industrial.pk, "I", 0.07)],
    )


# --- synthetic connections, written with COPY ----------------------------------------------------


def _next_id(model) -> int:
    with db.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {model._meta.db_table}")  # noqa: S608
        return cursor.fetchone()[0]


def _sync_sequence(model) -> None:
    table = model._meta.db_table
    with db.cursor() as cursor:
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence(%s, 'id'), (SELECT max(id) FROM {table}))",  # noqa: S608
            [table],
        )


@transaction.atomic
def generate(setup: Setup, count: int, *, seed: int, label: str = "", emails: bool = True) -> None:
    """`count` active connections of the provider, each with its customer, user and two readings.
    `emails=False`: the customers give no e-mail address, so their bills are e-mailed to nobody."""
    provider, code = setup.provider, setup.provider.code
    first_user, first_customer, first_connection = (
        _next_id(User),
        _next_id(Customer),
        _next_id(ServiceConnection),
    )
    now = datetime.now(ZONE)
    rng = random.Random(seed)
    types = [type_id for type_id, _, _ in setup.types]
    kinds = {type_id: kind for type_id, kind, _ in setup.types}
    weights = [share for _, _, share in setup.types]
    chosen = rng.choices(types, weights, k=count)
    prefix = f"{code}{label}"

    insert_values(
        User,
        USER_FIELDS,
        (
            (
                first_user + i,
                UNUSABLE_PASSWORD,
                False,
                f"c{i}{label.lower()}@{code.lower()}.example",
                f"Customer {prefix}-{i:06d}",
                f"+92 300 {i % 10_000_000:07d}",
                f"House {i % 500 + 1}, Street {i % 40 + 1}, Block {chr(65 + i % 12)}, Lahore",
                "",
                provider.pk,
                True,
                False,
                now,
                now,
            )
            for i in range(count)
        ),
    )
    insert_values(
        UserRole,
        ("user_id", "role", "assigned_at"),
        ((first_user + i, Role.CUSTOMER.value, now) for i in range(count)),
    )
    customer_kind = {
        "R": CustomerKind.RESIDENTIAL,
        "C": CustomerKind.COMMERCIAL,
        "I": CustomerKind.INDUSTRIAL,
    }
    insert_values(
        Customer,
        CUSTOMER_FIELDS,
        (
            (
                first_customer + i,
                provider.pk,
                first_user + i,
                f"{prefix}-CUS-{i:06d}",
                f"Customer {prefix}-{i:06d}",
                f"c{i}{label.lower()}@{code.lower()}.example" if emails else "",
                f"+92 300 {i % 10_000_000:07d}",
                f"House {i % 500 + 1}, Street {i % 40 + 1}, Block {chr(65 + i % 12)}, Lahore",
                customer_kind[kinds[chosen[i]]].value,
                "" if kinds[chosen[i]] == "R" else f"Enterprise {i}",
                now,
                now,
                "",
                "en",
                True,
                True,
                True,
            )
            for i in range(count)
        ),
    )
    insert_values(
        ServiceConnection,
        CONNECTION_FIELDS,
        (
            (
                first_connection + i,
                provider.pk,
                first_customer + i,
                f"{prefix}-{kinds[chosen[i]]}-{i:06d}",
                chosen[i],
                f"M{seed % 100:02d}{i:08d}",
                "Static TOU",
                f"Division {i % 7 + 1}",
                f"Subdivision {i % 31 + 1}",
                date(2015, 1, 1) + timedelta(days=i % 3000),
                ConnectionStatus.ACTIVE.value,
                None,
                now,
            )
            for i in range(count)
        ),
    )
    scale = {"R": 1, "C": 4, "I": 25}
    opening_day = PERIOD - timedelta(days=1)  # the last day of the month before
    closing_day = month_end(PERIOD.year, PERIOD.month)

    def readings():
        for i in range(count):
            factor = scale[kinds[chosen[i]]]
            peak0 = Decimal(rng.randrange(10_000, 900_000)) / 10
            off0 = Decimal(rng.randrange(40_000, 3_000_000)) / 10
            peak = Decimal(rng.randrange(50, 2_500) * factor) / 10  # 5 to 250 kWh (residential)
            off = Decimal(rng.randrange(200, 7_000) * factor) / 10  # 20 to 700 kWh
            solar = rng.random() < 0.05
            export_peak = Decimal(rng.randrange(0, 1_500)) / 10 if solar else Decimal(0)
            opened = datetime(opening_day.year, opening_day.month, opening_day.day, 8, tzinfo=ZONE)
            closed = datetime(closing_day.year, closing_day.month, closing_day.day, 8, tzinfo=ZONE)
            opened += timedelta(minutes=rng.randrange(0, 600))
            closed += timedelta(minutes=rng.randrange(0, 600))
            connection_id = first_connection + i
            zero, source = Decimal(0), ReadingSource.IMPORT.value
            yield (provider.pk, connection_id, opened, peak0, off0, zero, zero, False, source, now)
            yield (
                provider.pk,
                connection_id,
                closed,
                peak0 + peak,
                off0 + off,
                export_peak,
                zero,
                False,
                source,
                now,
            )

    insert_values(
        MeterReading,
        READING_FIELDS,
        readings(),
    )
    for model in (User, Customer, ServiceConnection):
        _sync_sequence(model)


def analyze() -> None:
    """Planner statistics, as autovacuum keeps them on a live database (it may be off on this one)."""
    with db.cursor() as cursor:
        cursor.execute("ANALYZE")


# --- the billing run, in worker processes --------------------------------------------------------


def _proc_kib(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Start this process's high-water mark afresh (Linux: `echo 5 > /proc/self/clear_refs`)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def worker(index: int, chunk_ids, results) -> None:
    """Bill chunks from the queue until the sentinel; report what it did and its memory."""
    connections.close_all()  # never use the parent's socket
    reset = _reset_peak()
    rss_start = _proc_kib("VmRSS")
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    server_start, cpu_start = _cpu_seconds(backend), _own_cpu_seconds()
    chunks = 0
    busy = 0.0
    while (chunk_id := chunk_ids.get()) is not None:
        started = time.perf_counter()
        if billing_run_chunk_bill(chunk_id=chunk_id):
            chunks += 1
        busy += time.perf_counter() - started
    server_cpu, cpu = _cpu_seconds(backend) - server_start, _own_cpu_seconds() - cpu_start
    connections.close_all()
    results.put(
        {
            "worker": index,
            "chunks": chunks,
            "busy": busy,
            "cpu": cpu,
            "server_cpu": server_cpu,
            "rss_start": rss_start,
            "peak": _proc_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        }
    )


def _machine_cpu_seconds() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine so far, all cores (/proc/stat)."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = ticks
    busy = user + nice + system + irq + softirq + steal
    hz = os.sysconf("SC_CLK_TCK")
    return busy / hz, (busy + idle + iowait) / hz


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _cpu_seconds(pid: int) -> float:
    """CPU time of a process of this machine (the worker's PostgreSQL backend); NaN if unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@dataclass
class RunResult:
    label: str
    run: BillingRun
    connections: int
    seconds: float
    plan_seconds: float
    invoices: int
    lines: int
    workers: list[dict] = field(default_factory=list)
    machine_busy: float = 0.0  # CPU seconds the whole machine was busy during the run, all cores
    machine_total: float = 0.0
    checks: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.invoices / self.seconds

    @property
    def cpu_per_thousand(self) -> tuple[float, float]:
        """CPU seconds per 1,000 bills: the workers' own, their PostgreSQL backends'."""
        return (
            sum(w["cpu"] for w in self.workers) * 1000 / self.invoices,
            sum(w["server_cpu"] for w in self.workers) * 1000 / self.invoices,
        )

    @property
    def worker_peak(self) -> int:
        return max(w["peak"] for w in self.workers)


def bill_chunks(chunk_ids: list[int], workers: int) -> list[dict]:
    """Bill the chunks in `workers` fresh processes taking ids from one queue; their reports."""
    connections.close_all()
    # Fresh processes, as Celery's workers are: a fork would share (and count) what generating the
    # connections left in this process's memory.
    context = multiprocessing.get_context("spawn")
    queue, results = context.Queue(), context.Queue()
    for chunk_id in chunk_ids:
        queue.put(chunk_id)
    for _ in range(workers):
        queue.put(None)
    processes = [context.Process(target=worker, args=(i, queue, results)) for i in range(workers)]
    for process in processes:
        process.start()
    reports = []
    while len(reports) < workers:
        try:
            reports.append(results.get(timeout=1))
        except queue_module.Empty:
            if any(process.exitcode for process in processes):
                break
    for process in processes:
        process.join()
    if any(process.exitcode for process in processes):
        sys.exit(f"A worker failed: exit codes {[p.exitcode for p in processes]}")
    return sorted(reports, key=lambda report: report["worker"])


def billing_run(setup: Setup, count: int, *, workers: int, chunk_size: int, label: str) -> RunResult:
    provider = setup.provider
    connections.close_all()
    machine_before = _machine_cpu_seconds()
    started = time.perf_counter()
    run, _ = billing_run_start(
        provider=provider, period=PERIOD, started_by=setup.officer, chunk_size=chunk_size
    )
    chunk_ids = pending_chunks(run)
    planned = time.perf_counter()
    reports = bill_chunks(chunk_ids, workers)
    elapsed = time.perf_counter() - started
    machine_busy, machine_total = (
        after - before for after, before in zip(_machine_cpu_seconds(), machine_before, strict=True)
    )
    result = RunResult(
        label=label,
        run=run,
        connections=count,
        seconds=elapsed,
        plan_seconds=planned - started,
        invoices=Invoice.objects.filter(billing_run=run).count(),
        lines=InvoiceLine.objects.filter(invoice__billing_run=run).count(),
        workers=reports,
        machine_busy=machine_busy,
        machine_total=machine_total,
    )
    result.checks = verify(setup, run, count, result)
    return result


def verify(setup: Setup, run: BillingRun, count: int, result: RunResult) -> list[tuple[str, bool]]:
    run.refresh_from_db()
    table, lines = Invoice._meta.db_table, InvoiceLine._meta.db_table
    with db.cursor() as cursor:
        cursor.execute(
            f"""SELECT count(*), count(DISTINCT number),
                       min(split_part(number, '-', 3)::int), max(split_part(number, '-', 3)::int),
                       count(*) FILTER (WHERE subsidy_total > 0)
                FROM {table} WHERE billing_run_id = %s""",  # noqa: S608
            [run.pk],
        )
        invoices, distinct, low, high, subsidised = cursor.fetchone()
        cursor.execute(
            f"""SELECT count(*) FROM (
                    SELECT i.id FROM {table} i JOIN {lines} l ON l.invoice_id = i.id
                    WHERE i.billing_run_id = %s
                    GROUP BY i.id, i.current_charges, i.energy_charge
                    HAVING sum(CASE WHEN l.kind = 'subsidy' THEN -l.amount ELSE l.amount END)
                               <> i.current_charges
                        OR sum(l.amount) FILTER (WHERE l.kind = 'energy') <> i.energy_charge
                        OR max(l.position) <> count(*)
                ) wrong""",  # noqa: S608
            [run.pk],
        )
        (wrong_sums,) = cursor.fetchone()
    audited = AuditLog.objects.filter(
        provider=setup.provider, action="create", object_type="invoicing.invoice"
    ).count()
    counter = DocumentCounter.objects.get(
        provider=setup.provider, series=DocumentSeries.INVOICE, year=run.issue_date.year
    )
    # 2 energy (peak, off-peak) + 2 taxes + 2 fixed charges, + 1 where the subsidy applied.
    expected_lines = 6 * count + subsidised
    return [
        (f"run completed, issued {run.issued:,} of {run.total:,}", run.status == "completed"),
        (f"invoices == N ({invoices:,})", invoices == count == run.issued),
        (
            f"numbers unique and gapless 1..N ({low}..{high}, {distinct:,} distinct)",
            distinct == invoices and low == 1 and high == count,
        ),
        (f"counter at N ({counter.last:,})", counter.last == count),
        (
            f"lines == 6 x N + subsidised ({result.lines:,} == 6 x {count:,} + {subsidised:,})",
            result.lines == expected_lines,
        ),
        (f"lines add up to every invoice ({wrong_sums} wrong)", wrong_sums == 0),
        (f"an audit record per invoice ({audited:,})", audited == count),
        ("audit chain intact", not audit_verify(chain=setup.provider.pk)),
        (f"no connection skipped or failed ({run.skipped} + {run.failed})", run.skipped + run.failed == 0),
    ]


# --- the same rows, copied: what PostgreSQL can write on this machine ------------------------------

# What the run writes per bill: the invoice, its lines, its audit record and its e-mail.
COPIED = (Invoice, InvoiceLine, AuditLog, Message)


def _clone(model) -> str:
    """An empty table like the model's: its columns, indexes and constraints, foreign keys included (a
    line's to the cloned invoices), so a row costs there what it costs in the real table."""
    table = model._meta.db_table
    clone = f"bench_copy_{table}"
    invoices = Invoice._meta.db_table
    with db.cursor() as cursor:
        cursor.execute(f'DROP TABLE IF EXISTS "{clone}" CASCADE')
        cursor.execute(f'CREATE TABLE "{clone}" (LIKE "{table}" INCLUDING ALL)')
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
            [table],
        )
        for (definition,) in cursor.fetchall():
            definition = definition.replace(f"REFERENCES {invoices}(", f"REFERENCES bench_copy_{invoices}(")
            cursor.execute(f'ALTER TABLE "{clone}" ADD {definition}')
    return clone


def _rows_of(group: list[int], provider_id: int) -> list[tuple[str, list[bytes]]]:
    """The COPY text of one chunk's bills, table by table, in the order they can be written."""
    low, high = group[0], group[-1]
    names = ",".join(f"'{pk}'" for pk in group)
    wheres = (
        f"id BETWEEN {low} AND {high}",
        f"invoice_id BETWEEN {low} AND {high}",
        f"provider_id = {provider_id} AND object_type = 'invoicing.invoice' AND object_id IN ({names})",
        f"about_type = 'invoicing.invoice' AND about_id BETWEEN {low} AND {high}",
    )
    blocks = []
    with db.cursor() as cursor:
        for model, where in zip(COPIED, wheres, strict=True):
            table = model._meta.db_table
            with cursor.cursor.copy(f'COPY (SELECT * FROM "{table}" WHERE {where}) TO STDOUT') as copy:  # noqa: S608 (ids and names of ours)
                blocks.append((f"bench_copy_{table}", [bytes(data) for data in copy]))
    return blocks


def copy_worker(index: int, groups: list[list[int]], provider_id: int, start, results) -> None:
    """Read this worker's share of the rows (not timed), then write them with COPY, a chunk per transaction."""
    connections.close_all()
    chunks = [_rows_of(group, provider_id) for group in groups]
    start.wait()
    began = time.perf_counter()
    for chunk in chunks:
        with transaction.atomic(), db.cursor() as cursor:
            for clone, blocks in chunk:
                with cursor.cursor.copy(f'COPY "{clone}" FROM STDIN') as copy:
                    for block in blocks:
                        copy.write(block)
    results.put((index, time.perf_counter() - began))
    connections.close_all()


def copy_baseline(run: BillingRun, *, workers: int, chunk_size: int, sample: int) -> tuple[int, float]:
    """Bills copied and the seconds it took: up to `sample` of the run's bills with their lines, audit
    records and e-mails, written again by `workers` processes into empty tables like the real ones."""
    for model in COPIED:
        _clone(model)
    ids = list(Invoice.objects.filter(billing_run=run).order_by("pk").values_list("pk", flat=True)[:sample])
    groups = [ids[i : i + chunk_size] for i in range(0, len(ids), chunk_size)]
    connections.close_all()
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(workers), context.Queue()
    processes = [
        context.Process(target=copy_worker, args=(i, groups[i::workers], run.provider_id, start, results))
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    seconds = [results.get()[1] for _ in processes]
    for process in processes:
        process.join()
    with db.cursor() as cursor:
        for model in reversed(COPIED):
            cursor.execute(f'DROP TABLE "bench_copy_{model._meta.db_table}" CASCADE')
    return len(ids), max(seconds)


# --- the naive loop: one invoice at a time through the ORM ---------------------------------------


def naive_loop(setup: Setup, sample: int) -> tuple[float, int, int]:
    """Bill `sample` fresh connections one at a time; returns seconds, invoices and lines written."""
    provider = setup.provider
    first = (
        ServiceConnection.objects.filter(provider=provider).order_by("-pk").values_list("pk", flat=True)[0]
    )
    generate(setup, sample, seed=7, label="N")
    analyze()
    ids = list(
        ServiceConnection.objects.filter(provider=provider, pk__gt=first)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    run = BillingRun.objects.filter(provider=provider, period=PERIOD).get()
    terms = issue_terms(
        provider=provider,
        period=PERIOD,
        issue_date=run.issue_date,
        due_date=None,
        source=InvoiceSource.READINGS,
        created_by=setup.officer,
    )
    schedule = schedule_in_force(provider=provider, day=run.issue_date)
    by_type = {type_id: schedule.for_type(type_id) for type_id, _, _ in setup.types}
    year, month = PERIOD.year, PERIOD.month
    lines_written = 0
    started = time.perf_counter()
    for pk in ids:
        with transaction.atomic():
            connection = ServiceConnection.objects.select_related("customer__user", "connection_type").get(
                pk=pk
            )
            readings = readings_for_period(connections=[pk], year=year, month=month)
            usage = usage_between(*period_readings(readings[pk], year, month))
            arrears = Invoice.objects.filter(
                connection_id=pk, period__lt=PERIOD, status__in=OPEN_STATUSES
            ).aggregate(open=Sum("balance"))["open"]
            bill = rate_usage(
                usage,
                by_type[connection.connection_type_id],
                income=connection.declared_monthly_income,
                arrears=arrears or NO_MONEY,
                late_surcharge_percent=terms.late_percent,
            )
            invoice, lines = build_invoice(terms, connection, usage, bill)
            counter, _ = DocumentCounter.objects.select_for_update().get_or_create(
                provider=provider, series=DocumentSeries.INVOICE, year=terms.issue_date.year
            )
            counter.last += 1
            counter.save(update_fields=["last"])
            invoice.number = SERIES_FORMAT[DocumentSeries.INVOICE].format(
                code=provider.code, year=terms.issue_date.year, n=counter.last
            )
            invoice.save(force_insert=True)  # what Invoice.objects.create(...) does
            for position, kind, label, code, amount, row_id in lines:
                InvoiceLine.objects.create(
                    invoice=invoice,
                    position=position,
                    kind=kind,
                    label=label,
                    code=code,
                    amount=amount,
                    row_id=row_id,
                )
            lines_written += len(lines)
    return time.perf_counter() - started, len(ids), lines_written


# --- the report ----------------------------------------------------------------------------------


def mib(kib: int) -> str:
    return f"{kib / MIB:,.0f} MiB"


def aim(met: bool) -> str:
    return "meets" if met else "BELOW"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=1000)
    parser.add_argument("--sample", type=int, default=2000, help="connections billed by the naive loop")
    parser.add_argument("--copy-sample", type=int, default=20_000, help="bills copied for the COPY baseline")
    parser.add_argument("--scaling", action="store_true", help="also run N/5 connections, to compare peaks")
    parser.add_argument("--quick", action="store_true", help="5,000 connections, a naive sample of 200")
    parser.add_argument("--database", default="billing_bench", help="dropped and created (never `test`)")
    args = parser.parse_args()
    if args.quick:
        args.connections, args.sample, args.copy_sample = 5_000, 200, 5_000
    count = args.connections
    logging.getLogger("invoicing").setLevel(logging.WARNING)  # no line per chunk

    load_before = os.getloadavg()
    began = time.perf_counter()
    recreate_database()
    call_command("migrate", verbosity=0)
    migrated = time.perf_counter()
    runs: list[RunResult] = []
    generated: list[tuple[int, float]] = []

    # (provider, connections, label, workers): one worker first, then the same work on `--workers`.
    setups = []
    if args.scaling:
        setups.append((make_provider("SMALL"), max(count // 5, 1), "N/5", args.workers))
    if args.workers > 1:
        setups.append((make_provider("ONE"), count, "N, 1 worker", 1))
    setups.append((make_provider("BENCH"), count, "N", args.workers))
    for setup, size, label, workers in setups:
        started = time.perf_counter()
        generate(setup, size, seed=size)
        analyze()
        generated.append((size, time.perf_counter() - started))
        seconds = generated[-1][1]
        print(f"generated {size:,} connections (+ customers, users, 2 readings each) in {seconds:.1f} s")
        result = billing_run(setup, size, workers=workers, chunk_size=args.chunk_size, label=label)
        print(
            f"billing run of {size:,} on {workers} worker(s): {result.seconds:.1f} s = {result.rate:,.0f} bills/s"
        )
        runs.append(result)
    setup = setups[-1][0]
    main_run = runs[-1]
    copied, copy_seconds = copy_baseline(
        main_run.run, workers=args.workers, chunk_size=args.chunk_size, sample=min(args.copy_sample, count)
    )
    copy_rate = copied / copy_seconds
    print(f"COPY of the same rows, {copied:,} bills: {copy_seconds:.1f} s = {copy_rate:,.0f} bills/s")
    naive_seconds, naive_invoices, naive_lines = naive_loop(setup, args.sample)
    naive_rate = naive_invoices / naive_seconds
    print(f"naive loop of {naive_invoices:,}: {naive_seconds:.1f} s = {naive_rate:,.0f} bills/s")
    with celery_app.connection_for_write() as broker:
        broker.default_channel.client.delete(settings.CELERY_TASK_DEFAULT_QUEUE)
    total = time.perf_counter() - began

    with db.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (server_version,) = cursor.fetchone()
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    rule = "-" * 104
    print()
    print(
        f"Billing run benchmark: PostgreSQL {server_version}, {os.cpu_count()} CPUs, "
        f"{args.workers} worker process{'es' if args.workers > 1 else ''}, "
        f"chunks of {args.chunk_size:,}, database {DATABASE}"
    )
    print(rule)
    print(
        f"{'':34}{'bills':>10}{'seconds':>10}{'bills/s':>10}{'invoices':>11}{'lines':>11}"
        f"{'worker peak RSS':>18}"
    )
    for result in runs:
        print(
            f"{f'billing run, {result.label} = {result.connections:,}':34}{result.connections:>10,}"
            f"{result.seconds:>10.2f}{result.rate:>10,.0f}{result.invoices:>11,}{result.lines:>11,}"
            f"{mib(result.worker_peak):>18}"
        )
    print(f"{'COPY of the same rows':34}{copied:>10,}{copy_seconds:>10.2f}{copy_rate:>10,.0f}")
    print(
        f"{'naive ORM loop, sample':34}{naive_invoices:>10,}{naive_seconds:>10.2f}{naive_rate:>10,.0f}"
        f"{naive_invoices:>11,}{naive_lines:>11,}{'(main process)':>18}"
    )
    print(rule)
    of_copy = main_run.rate / copy_rate
    print(
        f"run / COPY of the same rows ({args.workers} processes each): {of_copy:.2f} "
        f"(aim >= 0.70: {aim(of_copy >= 0.70)})"
    )
    of_naive = main_run.rate / naive_rate
    print(f"run / naive loop: {of_naive:,.1f}x (aim >= 60x: {aim(of_naive >= 60)})")
    if args.workers > 1:
        one = next(result for result in runs if result.label == "N, 1 worker")
        scale = main_run.rate / one.rate
        print(f"{args.workers} workers / 1 worker: {scale:.2f}x (aim >= 1.5x: {aim(scale >= 1.5)})")
    peak = max(result.worker_peak for result in runs)
    print(f"largest worker peak RSS: {mib(peak)} (aim < 128 MiB: {aim(peak < 128 * 1024)})")
    client, server = main_run.cpu_per_thousand
    cores = os.cpu_count() or 1
    print(
        f"CPU per bill: worker {client:.3f} ms + its PostgreSQL backend {server:.3f} ms; "
        f"{cores} cores doing nothing else could bill at most {cores * 1000 / (client + server):,.0f} bills/s"
    )
    ours = sum(w["cpu"] + w["server_cpu"] for w in main_run.workers)
    print(
        f"CPU during the run: {main_run.machine_busy:.1f} of {main_run.machine_total:.1f} CPU-seconds busy; "
        f"workers and their backends {ours:.1f}, everything else {main_run.machine_busy - ours:.1f} "
        "(PostgreSQL's background writers, the main process, other programs on the machine)"
    )
    print(
        f"machine load average before the runs: {', '.join(f'{load:.2f}' for load in load_before)} "
        "(other processes on these cores lower every figure)"
    )
    for result in runs:
        per_worker = ", ".join(
            f"#{w['worker']}: {w['chunks']} chunks, busy {w['busy']:.1f} s, "
            f"peak {mib(w['peak'])} (after fork {mib(w['rss_start'])})"
            for w in result.workers
        )
        print(f"workers of the {result.label} run: {per_worker}")
    if args.scaling:
        small, big = runs[0], runs[-1]
        print(
            f"memory vs N: worker peak {mib(small.worker_peak)} at {small.connections:,} connections, "
            f"{mib(big.worker_peak)} at {big.connections:,} ({big.worker_peak / small.worker_peak:.2f}x for "
            f"{big.connections / small.connections:.0f}x the connections)"
        )
    print(
        f"peak RSS (ru_maxrss): main process {mib(self_peak)}, largest worker {mib(children_peak)} "
        "(RUSAGE_CHILDREN, counts what a worker shares with the main process at the fork)"
    )
    sizes = ", ".join(f"{size:,} in {seconds:.1f} s" for size, seconds in generated)
    print(f"setup: migrate {migrated - began:.1f} s; generated {sizes}; whole benchmark {total:.0f} s")
    failed = False
    for result in runs:
        for description, ok in result.checks:
            failed |= not ok
            print(f"check ({result.label}): {'ok  ' if ok else 'FAIL'} {description}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
