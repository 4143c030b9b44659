"""`make prod-check`: the production stack of the Procfile on this machine, smoke-tested over HTTP.

Steps (README "Production"): a fresh PostgreSQL database; the DBA's SQL for the AI reader role
(deploy/ai_reader_role.sql, run by psql exactly as the README shows); migrate, collectstatic and a
small demo (the sample company cut to two customers) with config.settings.production; then
`honcho start` runs the Procfile's web (gunicorn), worker and beat, and the check talks to gunicorn
as nginx would (X-Forwarded-Proto: https, X-Forwarded-For): a static file, the sign-in page, the
API's sign-in, a bill, a payment, a billing run finished by the worker, an AI question answered.
Everything started is stopped (and checked gone) and the database and role are dropped, pass or fail.

Addresses default to CI's; PROD_CHECK_DATABASE_URL (its database is created and dropped),
PROD_CHECK_REDIS_URL, PROD_CHECK_BROKER_URL and PROD_CHECK_AI_ROLE change them. Outside CI the check
is skipped with one line when PostgreSQL or Redis is unreachable; with CI=true it fails.
"""

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from decimal import Decimal
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlparse, urlunparse

import redis

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DATABASE_URL = os.environ.get("PROD_CHECK_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/prod_check")
REDIS_URL = os.environ.get("PROD_CHECK_REDIS_URL", "redis://127.0.0.1:6379/3")
BROKER_URL = os.environ.get("PROD_CHECK_BROKER_URL", "redis://127.0.0.1:6379/4")
AI_ROLE = os.environ.get("PROD_CHECK_AI_ROLE", "prod_check_ai_reader")
SAMPLE = Path(os.environ.get("PROD_CHECK_SAMPLE", ROOT.parent / "shared" / "data" / "disco_sample.json"))
CUSTOMERS = 2  # of the sample's 75: enough for every step; its months billed (3 years) cost the rest
HOST = "billing.prod-check.test"  # what nginx would pass on as Host
# Polled until the stack is ready: the database, Redis and a worker's heartbeat (config.health).
READY_PATH = "/readyz"
PASSWORD = "billing-demo-2026"
METRICS_TOKEN = secrets.token_urlsafe(24)  # the demo's (README "Demo logins")


class CheckFailed(Exception):
    pass


def step(message: str) -> None:
    print(f"prod-check: {message}", flush=True)


def run(command: list[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode:
        raise CheckFailed(f"{' '.join(command[:4])} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")


def unreachable(url: str) -> str | None:
    parts = urlparse(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=3):
            return None
    except OSError as exc:
        return f"{parts.scheme} at {parts.hostname}:{parts.port} is unreachable ({exc})"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def with_database(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


def psql(sql: str) -> None:
    """As the server's superuser of DATABASE_URL, on its maintenance database."""
    run(["psql", with_database(DATABASE_URL, "postgres"), "-v", "ON_ERROR_STOP=1", "-qc", sql])


def drop_database_and_role(database: str) -> None:
    psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    psql(f'DROP ROLE IF EXISTS "{AI_ROLE}"')


def small_sample(directory: Path) -> Path:
    """The sample company with its first few customers, their connections and readings."""
    data = json.loads(SAMPLE.read_text())
    customers = {row["customer_id"] for row in data["customers"][:CUSTOMERS]}
    data["customers"] = [row for row in data["customers"] if row["customer_id"] in customers]
    data["connections"] = [row for row in data["connections"] if row["customer_id"] in customers]
    connections = {row["connection_id"] for row in data["connections"]}
    data["meter_readings"] = [row for row in data["meter_readings"] if row["connection_id"] in connections]
    path = directory / "sample.json"
    path.write_text(json.dumps(data))
    return path


def env_file(directory: Path, port: int, ai_password: str) -> Path:
    """What /etc/billing/billing.env holds on a real host (README "Production")."""
    values = {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": HOST,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_QUEUE": f"prod-check-{os.getpid()}",  # no other run's worker takes these tasks
        "CELERY_CONCURRENCY": "2",
        "NUM_PROXIES": "1",
        "AI_QUERY_DB_USER": AI_ROLE,
        "AI_QUERY_DB_PASSWORD": ai_password,
        "DJANGO_STATIC_ROOT": str(directory / "static"),
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",  # no mail server here
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "METRICS_TOKEN": METRICS_TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(directory / "metrics"),
        "LOG_FORMAT": "json",
    }
    (directory / "metrics").mkdir()
    path = directory / "billing.env"
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return path


def read_env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line)


class Client:
    """Speaks to gunicorn as nginx would: over HTTP, with X-Forwarded-Proto: https and the client's
    address. Keeps cookies itself (they are Secure: a cookie jar would not send them over HTTP)."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.cookies: dict[str, str] = {}
        self.token = ""

    def request(self, method: str, path: str, body=None, form=None, proxied: bool = True):
        headers = {"Host": HOST, "X-Forwarded-For": "203.0.113.7"}
        if proxied:
            headers["X-Forwarded-Proto"] = "https"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        elif form is not None:
            data, headers["Content-Type"] = urlencode(form).encode(), "application/x-www-form-urlencoded"
            headers["Origin"] = f"https://{HOST}"
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        opener = urllib.request.build_opener(NoRedirect)
        try:
            response = opener.open(request, timeout=30)
        except urllib.error.HTTPError as error:
            response = error
        with response:
            content = response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie(header)
            self.cookies.update({name: morsel.value for name, morsel in cookie.items()})
        return response.status, response.headers, content

    def json(self, method: str, path: str, body=None, expect: int = 200) -> dict:
        status, _, content = self.request(method, path, body=body)
        if status != expect:
            raise CheckFailed(f"{method} {path}: {status}, expected {expect}: {content[:500]!r}")
        return json.loads(content)

    def sign_in_api(self, email: str) -> None:
        self.token = ""
        self.token = self.json("POST", "/api/auth/login", {"email": email, "password": PASSWORD})["token"]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def wait_for(what: str, probe, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if probe():
            return
        if time.monotonic() > deadline:
            raise CheckFailed(f"{what}: not within {seconds:.0f} s")
        time.sleep(0.5)


def answers(client: Client, path: str) -> bool:
    try:
        return client.request("GET", path)[0] == 200
    except OSError:
        return False  # not listening yet


def smoke(client: Client) -> None:
    step("the web answers over HTTPS only: a plain-HTTP request is redirected")
    status, headers, _ = client.request("GET", "/sign-in", proxied=False)
    if status != 301 or not headers["Location"].startswith(f"https://{HOST}/"):
        raise CheckFailed(f"plain HTTP: {status} {headers.get('Location')}, expected 301 to https")

    step("a static file, served by whitenoise from the collected files")
    status, headers, content = client.request("GET", "/static/app/app.css")
    if status != 200 or "text/css" not in headers["Content-Type"] or not content:
        raise CheckFailed(f"/static/app/app.css: {status} {headers['Content-Type']}")

    step("the sign-in page (CSRF) signs a super creator in")
    status, _, content = client.request("GET", "/sign-in")
    if status != 200 or "csrftoken" not in client.cookies:
        raise CheckFailed(f"/sign-in: {status}, cookies {sorted(client.cookies)}")
    form = {
        "csrfmiddlewaretoken": client.cookies["csrftoken"],
        "email": "super@disco.example",
        "password": PASSWORD,
    }
    status, headers, content = client.request("POST", "/sign-in", form=form)
    if status != 302 or "sessionid" not in client.cookies:
        raise CheckFailed(f"POST /sign-in: {status}, expected 302 and a session: {content[:300]!r}")
    status, _, _ = client.request("GET", "/dashboard")
    if status != 200:
        raise CheckFailed(f"/dashboard after signing in: {status}")
    client.cookies.clear()

    step("the API's sign-in (JWT), then a bill")
    client.sign_in_api("super@disco.example")
    unpaid = client.json("GET", "/api/invoices/provider?status=Pending&pageSize=1")["results"]
    if not unpaid:
        raise CheckFailed("the demo has no unpaid bill")
    invoice = unpaid[0]
    month = invoice["billingMonth"]
    year, number = month.split("-")
    query = urlencode(
        {
            "customerId": invoice["customerId"],
            "connectionId": invoice["connectionNumber"],
            "year": year,
            "month": int(number),
        }
    )
    bill = client.json("GET", f"/api/bills?{query}")
    step(
        f"  bill {invoice['invoiceNumber']} of {month}: {len(json.dumps(bill))} bytes, balance {invoice['balance']}"
    )

    step("a payment")
    methods = client.json("GET", "/api/payment-methods")
    paid = client.json(
        "POST",
        "/api/payments",
        {"billId": invoice["invoiceId"], "amount": "100.00", "method": methods[0]["code"]},
        expect=201,
    )
    stored = client.json("GET", f"/api/payments/{paid['paymentId']}")
    settled = sum(Decimal(row["amount"]) for row in stored["settled"])  # the oldest bill first
    if settled != 100 or Decimal(stored["payableAfter"]) != Decimal(stored["payableBefore"]) - 100:
        raise CheckFailed(f"the payment of 100.00 as stored: {stored}")
    step(f"  receipt {paid['receiptNumber']}: payable {stored['payableBefore']} -> {stored['payableAfter']}")

    step(f"a billing run of {month}, finished by the worker")
    run_id = client.json("POST", "/api/billing-runs", {"month": month}, expect=202)["runId"]
    progress = {}

    def finished() -> bool:
        progress.update(client.json("GET", f"/api/billing-runs/{run_id}"))
        return progress["status"] != "running"

    wait_for("the billing run", finished, 60)
    if progress["status"] != "completed" or progress["done"] != progress["total"] or not progress["total"]:
        raise CheckFailed(f"the billing run ended {progress}")
    step(f"  run {run_id}: {progress['total']} connections, {progress['status']}")

    step("an auditor's AI question, answered on PostgreSQL as the reader role")
    client.sign_in_api("auditor@disco.example")
    asked = client.json("POST", "/api/audit/query", {"question": "Count of invoices by status"}, expect=202)
    answer = {}

    def answered() -> bool:
        answer.update(client.json("GET", f"/api/audit/query/{asked['queryId']}"))
        return answer["status"] != "pending"

    wait_for("the AI question", answered, 60)
    if answer["status"] != "answered" or not answer["rows"] or "ai_views." not in answer["executedSql"]:
        raise CheckFailed(f"the AI question: {answer}")
    step(f"  answered: {answer['rows']}")

    step("readiness names every dependency, and Prometheus scrapes the metrics with its token")
    status, _, content = client.request("GET", READY_PATH)
    checks = json.loads(content)["checks"]
    if status != 200 or any(check["status"] != "ok" for check in checks.values()):
        raise CheckFailed(f"{READY_PATH}: {status} {checks}")
    status, _, _ = client.request("GET", "/metrics")
    if status != 401:
        raise CheckFailed(f"/metrics without the token: {status}, expected 401")
    client.token = METRICS_TOKEN
    status, _, content = client.request("GET", "/metrics")
    client.token = ""
    metrics = content.decode()
    wanted = (
        "billing_payments_total{",
        'billing_runs{status="completed"}',
        "django_http_requests_total_by_view",
    )
    missing = [name for name in wanted if name not in metrics]
    if status != 200 or missing:
        raise CheckFailed(f"/metrics: {status}, missing {missing}")
    step(f"  {READY_PATH}: {', '.join(checks)} ok; /metrics: {len(metrics.splitlines())} lines")


def json_logs(log: Path) -> None:
    """Every line the web and the worker log is one JSON object; a task's names its id as request id."""
    step("the web's and the worker's log lines are JSON, a task's carrying its id")
    task_lines = 0
    for line in log.read_text().splitlines():
        process, _, text = line.partition(" | ")
        if not process.split()[-1:] or process.split()[-1] not in ("web.1", "worker.1"):
            continue
        if not text.startswith("{"):
            continue  # gunicorn's own lines (its access log) and Celery's banner are not Django's
        record = json.loads(text)
        if process.endswith("worker.1") and "succeeded" in record["message"] and record["request_id"] != "-":
            task_lines += 1
    if not task_lines:
        raise CheckFailed("no JSON log line of a finished task carrying its request id")
    step(f"  {task_lines} task lines")


def process_tree(root: int) -> set[int]:
    """The pids under `root` (honcho puts each Procfile process in a session of its own)."""
    children: dict[int, list[int]] = {}
    for line in subprocess.run(
        ["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True
    ).stdout.splitlines():
        pid, ppid = map(int, line.split())
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone but for its exit status.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def stop(stack: subprocess.Popen) -> list[int]:
    """SIGTERM to honcho, which stops every process; returns what is still running after 60 s
    (then killed)."""
    started = process_tree(stack.pid) | {stack.pid}
    if stack.poll() is None:
        stack.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        stack.wait(timeout=60)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in started):
        time.sleep(0.2)
    left = [pid for pid in started if alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    stack.wait()
    step(f"  {len(started) - len(left)} of {len(started)} processes stopped by SIGTERM")
    return left


def check(directory: Path) -> None:
    database = urlparse(DATABASE_URL).path.lstrip("/")
    port, ai_password = free_port(), secrets.token_urlsafe(24)
    settings = env_file(directory, port, ai_password)
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **read_env_file(settings)}

    step(f"a fresh database {database}; Redis {REDIS_URL} (cache) and {BROKER_URL} (broker), emptied")
    drop_database_and_role(database)
    psql(f'CREATE DATABASE "{database}"')
    for url in (REDIS_URL, BROKER_URL):
        redis.Redis.from_url(url).flushdb()
    stack = None
    try:
        step("the DBA's SQL for the AI reader role (deploy/ai_reader_role.sql)")
        run(
            [
                "psql", with_database(DATABASE_URL, "postgres"), "-v", "ON_ERROR_STOP=1",
                "-v", f"role={AI_ROLE}", "-v", f"password={ai_password}", "-f", "deploy/ai_reader_role.sql",
            ]
        )  # fmt: skip
        started = time.monotonic()
        step("migrate and the demo cut to two customers, collectstatic beside them (production settings)")
        # collectstatic compresses every file (a minute on a busy machine) and needs no database.
        collect = subprocess.Popen(
            [sys.executable, "manage.py", "collectstatic", "--noinput"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            run([sys.executable, "manage.py", "migrate", "--noinput"], env)
            run([sys.executable, "manage.py", "demo_data", "--sample", str(small_sample(directory))], env)
        finally:
            output = collect.communicate()[0]
        if collect.returncode:
            raise CheckFailed(f"collectstatic failed:\n{output[-3000:]}")
        step(f"  ready in {time.monotonic() - started:.0f} s")

        step(f"honcho starts the Procfile: web (gunicorn at 127.0.0.1:{port}), worker, beat")
        log = open(directory / "stack.log", "w")  # noqa: SIM115  closed with the stack
        stack = subprocess.Popen(
            [BIN / "honcho", "start", "--no-colour", "-f", "Procfile", "-e", str(settings)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        client = Client(port)

        def ready() -> bool:
            if stack.poll() is not None:
                raise CheckFailed(f"honcho exited ({stack.returncode}) before the web answered")
            return answers(client, READY_PATH)

        wait_for(f"{READY_PATH} answering 200", ready, 60)
        smoke(client)
    except Exception:
        if stack is not None:
            print((directory / "stack.log").read_text()[-6000:], file=sys.stderr)
        raise
    finally:
        if stack is not None:
            step("stopping the stack (SIGTERM to honcho)")
            left = stop(stack)
            log.close()
        step(f"dropping the database {database} and the role {AI_ROLE}")
        drop_database_and_role(database)
        for url in (REDIS_URL, BROKER_URL):
            redis.Redis.from_url(url).flushdb()
    if stack is not None and left:
        raise CheckFailed(f"processes still running after the stack stopped (killed): {left}")
    json_logs(directory / "stack.log")


def main() -> int:
    problems = [p for p in (unreachable(DATABASE_URL), unreachable(REDIS_URL), unreachable(BROKER_URL)) if p]
    if problems:
        if os.environ.get("CI", "").lower() == "true":
            print("FAILED: prod-check cannot run in CI:", "; ".join(problems), file=sys.stderr)
            return 1
        print("Skipping prod-check:", "; ".join(problems))
        return 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="prod-check-") as directory:
        try:
            check(Path(directory))
        except CheckFailed as failure:
            print(f"prod-check FAILED: {failure}", file=sys.stderr)
            return 1
    step(f"passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
