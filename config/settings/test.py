"""The test suite: the embedded default, plus fast hashing. DATABASE_URL, REDIS_URL and
CELERY_BROKER_URL switch it onto the real PostgreSQL, Redis and Celery workers (CI's second pass)."""

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="test-only-not-secret-5d1e8f2a9c4b7e3a6f0d1c2b3a495867")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed; never outside tests
# Tests call tasks eagerly; the realstack suite switches this off around the tests that use a worker.
CELERY_TASK_ALWAYS_EAGER = True
# Static files are not collected for tests; runserver-style serving is not needed either.
MIDDLEWARE = [m for m in MIDDLEWARE if m != "whitenoise.middleware.WhiteNoiseMiddleware"]  # noqa: F405
