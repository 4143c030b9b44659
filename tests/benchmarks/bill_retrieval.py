"""Benchmark of the bill retrieval (`GET /api/bills`: a bill and its previous 10) on PostgreSQL.

    .venv/bin/python tests/benchmarks/bill_retrieval.py [--connections 1000000] [--months 12]
        [--samples 2000] [--http-seconds 10] [--quick] [--database bills_bench]

Drops and creates its own database (`bills_bench` on postgres@127.0.0.1:5432; never `test`), migrates
it and loads a demo-sized provider (75 connections, as the sample company's) with `--months` months of
bills, written by generate_series in the server (tests/bill_rows.py). Then, in the same run:

- the selector's p95 (`bill_answer_for`, a random customer's random month) on the demo's tables;
- the same after a second provider of `--connections` connections x `--months` months is loaded
  (aim: within 2x of the demo's: every lookup is an index scan, so size should barely count);
- with more than 12 `--months`, the pages the statement touches (EXPLAIN ANALYZE's buffers, which no
  load on the machine changes) for a bill with a year of bills before it and for one with all of them:
  the same, as the history is read walking its index back ten entries;
- the API's p95 in-process (Django's test client with a bearer token: token check, view, JSON), on
  the big provider (aim: <= 5 ms);
- over HTTP: gunicorn with 4 sync workers, 16 concurrent clients, `/api/bills` requests per second
  against `/api/payment-methods`' (a trivial endpoint behind the same token check), alternating
  rounds (aim: >= 0.5). gunicorn must be importable (requirements.txt).

Connections to PostgreSQL are kept between requests (DATABASE_CONN_MAX_AGE=600), as a deployment
keeps them. `--quick`: 50,000 connections, 500 samples, 3-second HTTP rounds.
"""

import argparse
import importlib
import os
import random
import socket
import subprocess
import sys
import threading
import time
from datetime import date
from http.client import HTTPConnection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

FIRST_PERIOD = date(2024, 1, 1)
DEMO_CONNECTIONS = 75

if "--database" not in " ".join(sys.argv):
    sys.argv += ["--database", "bills_bench"]
# Connections kept between requests, as a deployment keeps them; tokens that outlive the run.
os.environ.update({"DATABASE_CONN_MAX_AGE": "600", "JWT_ACCESS_MINUTES": "600"})
# Sets Django up on the benchmark's database (it reads --database), before anything imports a model.
bench = importlib.import_module("tests.benchmarks.billing_run")

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from accounts.roles import Role  # noqa: E402
from accounts.services import user_create  # noqa: E402
from accounts.tokens import token_pair_for  # noqa: E402
from invoicing.selectors import bill_answer_for  # noqa: E402
from providers.services import connection_type_create, provider_create  # noqa: E402
from tests.bill_rows import load_bills  # noqa: E402


def make_provider(code: str, connections: int, months: int):
    provider = provider_create(code=code, name=f"{code} Electric Supply", city="Lahore", email="b@x.example")
    kind = connection_type_create(provider=provider, code="A-1", description="Residential 5 kW")
    load_bills(
        provider_id=provider.pk,
        connection_type_id=kind.pk,
        prefix=code,
        customers=connections,
        months=months,
        first_period=FIRST_PERIOD,
    )
    staff = user_create(
        email=f"officer@{code.lower()}.example", name="Officer", provider=provider, roles=[Role.SUPER_CREATOR]
    )
    staff.active_role = Role.SUPER_CREATOR
    return staff


def lookups(code: str, connections: int, months: int, count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    found = []
    for _ in range(count):
        i, month = rng.randint(1, connections), rng.randrange(months)
        period = date(FIRST_PERIOD.year + month // 12, month % 12 + 1, 1)
        found.append(
            {
                "customer_number": f"{code}-CUS-{i:07d}",
                "connection_number": f"{code}-CON-{i:07d}",
                "year": period.year,
                "month": period.month,
            }
        )
    return found


def p95(timings: list[float]) -> float:
    return sorted(timings)[int(len(timings) * 0.95)] * 1000


def selector_p95(staff, asks: list[dict]) -> float:
    for ask in asks[:50]:  # warm: the connection, the cache of the plan's pages
        bill_answer_for(user=staff, **ask)
    timings = []
    for ask in asks:
        started = time.perf_counter()
        bill_answer_for(user=staff, **ask)
        timings.append(time.perf_counter() - started)
    return p95(timings)


def in_month(asks: list[dict], index: int) -> list[dict]:
    """The same lookups, each for the bill of the `index`-th month (0: the first)."""
    period = date(FIRST_PERIOD.year + index // 12, index % 12 + 1, 1)
    return [{**ask, "year": period.year, "month": period.month} for ask in asks]


def pages_per_lookup(staff, asks: list[dict]) -> float:
    """The database pages the statement touches (shared buffers hit or read, by EXPLAIN ANALYZE), on
    average: what a lookup costs the database, whatever else the machine is doing."""
    total = 0
    for ask in asks:
        with CaptureQueriesContext(connection) as queries:
            bill_answer_for(user=staff, **ask)
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {queries[-1]['sql']}")
            plan = cursor.fetchone()[0][0]["Plan"]
        total += plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]
    return total / len(asks)


def url_of(ask: dict) -> str:
    return (
        f"/api/bills?customerId={ask['customer_number']}&connectionId={ask['connection_number']}"
        f"&year={ask['year']}&month={ask['month']}"
    )


def api_p95(token: str, asks: list[dict]) -> float:
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="localhost")
    for ask in asks[:50]:
        assert client.get(url_of(ask)).status_code == 200
    timings = []
    for ask in asks:
        started = time.perf_counter()
        response = client.get(url_of(ask))
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200, response.content
    return p95(timings)


# --- over HTTP -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "config.wsgi:application", "--workers", "4"),
            *("--bind", f"127.0.0.1:{port}", "--log-level", "warning"),
        ],
        cwd=ROOT,
        env=dict(os.environ),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    sys.exit("gunicorn did not start")


def http_rate(port: int, token: str, paths: list[str], seconds: float, clients: int = 16) -> float:
    """Requests per second of `clients` threads, each sending `paths` round robin for `seconds`."""
    done, failed, stop = [0] * clients, [], time.monotonic() + seconds

    def client(index: int) -> None:
        headers = {"Authorization": f"Bearer {token}", "Host": "localhost"}
        step = index
        while time.monotonic() < stop:
            conn = HTTPConnection("127.0.0.1", port, timeout=30)  # sync workers close each connection
            conn.request("GET", paths[step % len(paths)], headers=headers)
            response = conn.getresponse()
            response.read()
            conn.close()
            if response.status != 200:
                failed.append(response.status)
            done[index] += 1
            step += clients

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failed, f"HTTP failures: {failed[:5]}"
    return sum(done) / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=1_000_000, help="of the big provider")
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--http-seconds", type=float, default=10.0, help="per round; two rounds each")
    parser.add_argument("--database", default="bills_bench", help="dropped and created (never `test`)")
    parser.add_argument("--quick", action="store_true", help="50,000 connections, 500 samples, 3 s rounds")
    args = parser.parse_args()
    if args.quick:
        args.connections, args.samples, args.http_seconds = 50_000, 500, 3.0

    bench.recreate_database()
    call_command("migrate", verbosity=0)
    demo_staff = make_provider("DEM", DEMO_CONNECTIONS, args.months)
    demo_asks = lookups("DEM", DEMO_CONNECTIONS, args.months, args.samples, seed=1)
    small = selector_p95(demo_staff, demo_asks)

    started = time.perf_counter()
    staff = make_provider("BIG", args.connections, args.months)
    loaded = time.perf_counter() - started
    asks = lookups("BIG", args.connections, args.months, args.samples, seed=2)
    big = selector_p95(staff, asks)
    # A bill with a year of bills before it against one with all `--months` before it.
    if args.months > 12:
        year_in = pages_per_lookup(staff, in_month(asks[:200], 12))
        all_in = pages_per_lookup(staff, in_month(asks[:200], args.months - 1))
    token = str(token_pair_for(user=staff, role=Role.SUPER_CREATOR).access)
    api = api_p95(token, asks)

    port = free_port()
    server = start_gunicorn(port)
    try:
        bill_paths = [url_of(ask) for ask in asks]
        trivial_paths = ["/api/payment-methods"]
        http_rate(port, token, bill_paths + trivial_paths, 1.0)  # warm every worker
        bills = trivial = 0.0
        for _ in range(2):  # alternating, so a slower moment of the machine falls on both
            trivial += http_rate(port, token, trivial_paths, args.http_seconds)
            bills += http_rate(port, token, bill_paths, args.http_seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)

    invoices = args.connections * args.months
    print(
        f"loaded {args.connections:,} connections x {args.months} months ({invoices:,} bills) in {loaded:.0f} s"
    )
    print(f"selector p95, demo ({DEMO_CONNECTIONS} connections): {small:.2f} ms")
    print(
        f"selector p95, {args.connections:,} connections: {big:.2f} ms = {big / small:.2f}x the demo's"
        f"  (aim: <= 2x)  {'OK' if big / small <= 2 else 'MISSED'}"
    )
    if args.months > 12:
        print(
            f"pages per lookup: a bill after 12 months of bills {year_in:.1f}, after {args.months - 1} months "
            f"{all_in:.1f} = {all_in / year_in:.2f}x  (aim: ~1x, the history's length does not count)"
        )
    print(f"API p95 in-process: {api:.2f} ms  (aim: <= 5 ms)  {'OK' if api <= 5 else 'MISSED'}")
    print(
        f"HTTP, gunicorn 4 workers, 16 clients: /api/bills {bills / 2:.0f} req/s, /api/payment-methods "
        f"{trivial / 2:.0f} req/s = {bills / trivial:.2f}  (aim: >= 0.5)  {'OK' if bills / trivial >= 0.5 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
