import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.conf import settings as django_settings
from django.core.cache import caches
from django.utils import translation
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.tokens import token_pair_for
from config import context
from config.celery import app as celery_app
from tests.factories import ProviderFactory, UserFactory
from tests.smtp import SMTPServer

IN_CI = os.environ.get("CI", "").lower() == "true"

# CLOCK_SHIFT_DAYS=400 runs the whole session with the clock that many days ahead of the real date
# (negative: behind), ticking: a test that leans on today's date without freezing it fails here
# rather than on the day the calendar reaches it. A test's own freeze (time_machine) still wins.
CLOCK_SHIFT_DAYS = int(os.environ.get("CLOCK_SHIFT_DAYS") or 0)


def pytest_configure(config):
    stale = [
        po
        for po in Path(__file__).parent.parent.glob("locale/*/LC_MESSAGES/*.po")
        if not po.with_suffix(".mo").exists() or po.with_suffix(".mo").stat().st_mtime < po.stat().st_mtime
    ]
    if stale:
        # Pages would silently fall back to English: compiled by `make messages` (make test runs it).
        pytest.exit(f"The translation catalogues are not compiled ({stale[0]}): run `make messages`.", 2)
    if CLOCK_SHIFT_DAYS:
        shifted = time_machine.travel(datetime.now(tz=UTC) + timedelta(days=CLOCK_SHIFT_DAYS), tick=True)
        shifted.start()
        config.add_cleanup(shifted.stop)


def pytest_report_header(config):
    if CLOCK_SHIFT_DAYS:
        return f"clock shifted {CLOCK_SHIFT_DAYS} days: today is {datetime.now(tz=UTC).date()}"
    return None


@pytest.fixture(autouse=True)
def _no_one_acting():
    """Each test starts with no actor bound (a request of an earlier test may have bound one)."""
    token = context.bind(request_id="", actor_id=None, role="", provider_id=None)
    yield
    context.reset(token)


@pytest.fixture(autouse=True)
def _english_until_asked():
    """A request in Urdu leaves Urdu active in its thread (Django's test client, like a server's
    thread, keeps it): each test starts in the default language, as a worker's task does."""
    translation.activate(django_settings.LANGUAGE_CODE)
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters live in the cache (in this process's memory while it is down); each test
    starts with none."""
    for alias in django_settings.CACHES:
        caches[alias].clear()
    yield
    for alias in django_settings.CACHES:
        caches[alias].clear()


def unreachable_redis_url() -> str:
    """A Redis address nothing listens on: a connection to it is refused, as to a Redis that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture
def cache_down(settings):
    """The shared cache (Redis) is down: every use of it raises redis-py's own ConnectionError."""
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": unreachable_redis_url(),
        },
    }


@pytest.fixture
def broker_down():
    """Tasks go to a broker (not run in this process) that is down: a connection or a send raises
    kombu's own OperationalError."""
    conf = celery_app.conf
    # The write address, since CELERY_BROKER_URL in the environment (the real-stack pass) wins over
    # `broker_url`; connections to the broker are pooled once made: none to the dead one may outlive
    # the test.
    saved = (
        conf.task_always_eager,
        conf.get("broker_write_url"),
        celery_app._pool,
        celery_app.amqp._producer_pool,
    )
    conf.task_always_eager, conf.broker_write_url = False, unreachable_redis_url()
    celery_app._pool = celery_app.amqp._producer_pool = None
    yield
    conf.task_always_eager, conf.broker_write_url, celery_app._pool, celery_app.amqp._producer_pool = saved


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def provider(db):
    return ProviderFactory()


@pytest.fixture
def other_provider(db):
    return ProviderFactory()


@pytest.fixture
def as_role(db):
    """An API client signed in as `user` acting in `role` (a token pair, as the login API issues)."""

    def client_for(user, role: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user=user, role=role).access}")
        return client

    return client_for


@pytest.fixture
def admin_user(provider):
    return UserFactory(provider=provider, roles=[Role.ADMIN])


@pytest.fixture
def admin_api(as_role, admin_user):
    return as_role(admin_user, Role.ADMIN)


def pytest_collection_modifyitems(config, items):
    """Tests marked `realstack` run only in tests/realstack.py's pass, on the real services."""
    if os.environ.get("REALSTACK"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL, Redis and a Celery worker: run tests/realstack.py")
    for item in items:
        if "realstack" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def smtp_server():
    """The suite's SMTP server (tests/smtp.py), started once."""
    server = SMTPServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mailbox(smtp_server, settings):
    """E-mail goes to the suite's SMTP server through Django's SMTP backend; the test reads what the
    server received (`mailbox.received`) and may script its refusals (`mailbox.refuse_next`)."""
    for name, value in smtp_server.settings().items():
        setattr(settings, name, value)
    smtp_server.inbox.clear()
    yield smtp_server.inbox
    smtp_server.inbox.clear()
