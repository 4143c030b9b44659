import os
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.tokens import token_pair_for
from config import context
from tests.factories import ProviderFactory, UserFactory

IN_CI = os.environ.get("CI", "").lower() == "true"

# CLOCK_SHIFT_DAYS=400 runs the whole session with the clock that many days ahead of the real date
# (negative: behind), ticking: a test that leans on today's date without freezing it fails here
# rather than on the day the calendar reaches it. A test's own freeze (time_machine) still wins.
CLOCK_SHIFT_DAYS = int(os.environ.get("CLOCK_SHIFT_DAYS") or 0)


def pytest_configure(config):
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
def _fresh_cache():
    """Throttle counters live in the cache; each test starts with none."""
    cache.clear()
    yield
    cache.clear()


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
