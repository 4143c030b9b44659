"""The test suite: the embedded default, plus fast hashing. DATABASE_URL, REDIS_URL and
CELERY_BROKER_URL switch it onto the real PostgreSQL, Redis and Celery workers (CI's second pass)."""

import os
from urllib.parse import urlparse

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="test-only-not-secret-5d1e8f2a9c4b7e3a6f0d1c2b3a495867")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed; never outside tests
# Tests call tasks eagerly; the realstack suite switches this off around the tests that use a worker.
CELERY_TASK_ALWAYS_EAGER = True
# Static files are not collected for tests; runserver-style serving is not needed either.
MIDDLEWARE = [m for m in MIDDLEWARE if m != "whitenoise.middleware.WhiteNoiseMiddleware"]  # noqa: F405

# pytest-xdist runs the real-stack pass in processes side by side, each on a test database of its own
# (pytest-django names them). Each also gets its own Celery queue, so that its workers never take
# another's tasks, and its own Redis database for the cache, which every test clears. A worker process
# started by a test inherits PYTEST_XDIST_WORKER, so it reads the same queue and cache.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if XDIST_WORKER:
    CELERY_TASK_DEFAULT_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}-{XDIST_WORKER}"  # noqa: F405
    if REDIS_URL:  # noqa: F405
        cache_db = int(urlparse(REDIS_URL).path.strip("/") or 0) + 2 * int(XDIST_WORKER.removeprefix("gw"))  # noqa: F405
        CACHES["default"]["LOCATION"] = urlparse(REDIS_URL)._replace(path=f"/{cache_db}").geturl()  # noqa: F405
