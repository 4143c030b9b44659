"""The suite's second pass: the whole suite on the real PostgreSQL, Redis and a Celery worker.

In CI (CI=true) an unreachable service is a failure; elsewhere this pass is skipped with one line.
The addresses default to CI's: PostgreSQL at 127.0.0.1:5432 (user postgres, database test) and
Redis at 127.0.0.1:6379; TEST_DATABASE_URL and TEST_REDIS_URL change them.
"""

import os
import socket
import subprocess
import sys
from urllib.parse import urlparse

DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/1")
# The broker gets a database of its own: the tests clear the cache (FLUSHDB) between tests, which
# must never drop queued tasks.
BROKER_URL = os.environ.get("TEST_BROKER_URL", "redis://127.0.0.1:6379/2")


def unreachable(url: str) -> str | None:
    parts = urlparse(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=3):
            return None
    except OSError as exc:
        return f"{parts.scheme} at {parts.hostname}:{parts.port} is unreachable ({exc})"


def main() -> int:
    problems = [p for p in (unreachable(DATABASE_URL), unreachable(REDIS_URL), unreachable(BROKER_URL)) if p]
    if problems:
        if os.environ.get("CI", "").lower() == "true":
            print(
                "FAILED: the PostgreSQL/Redis suite cannot run in CI:", "; ".join(problems), file=sys.stderr
            )
            return 1
        print("Skipping the PostgreSQL/Redis suite:", "; ".join(problems))
        return 0
    env = {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_QUEUE": f"test-{os.getpid()}",  # a worker of another run never takes these tasks
        "REALSTACK": "1",
    }
    print(f"Running the suite on PostgreSQL ({DATABASE_URL}) with Redis ({REDIS_URL}) and a Celery worker")
    return subprocess.call([sys.executable, "-m", "pytest", *sys.argv[1:]], env=env)


if __name__ == "__main__":
    sys.exit(main())
