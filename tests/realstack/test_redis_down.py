"""With its Redis down (the test's own redis-server, stopped), on the real stack: people still sign
in (the sign-in limits count in the process meanwhile), and work for the workers is refused with a
503 that says when to try again, with nothing stored; once Redis is back, the same request is taken."""

import pytest

from accounts.roles import Role
from auditing.models import AIQuery
from config.celery import app as celery_app
from invoicing.models import BillingRun
from tests.factories import PASSWORD, FlatTariffFactory, UserFactory, billable_connection

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def redis_for_everything(own_broker, settings):
    """The cache and the broker are the test's own Redis; tasks are sent to it, not run here."""
    settings.CACHES = {
        **settings.CACHES,
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": own_broker.url(1)},
    }
    celery_app.conf.task_always_eager = False
    try:
        yield own_broker
    finally:
        celery_app.conf.task_always_eager = True


def test_with_redis_down_people_sign_in_and_work_for_the_workers_waits_for_it(
    redis_for_everything, provider, api, client, as_role
):
    FlatTariffFactory(provider=provider)
    billable_connection(provider)
    officer = UserFactory(provider=provider, email="officer@disco.example", roles=[Role.SUPER_CREATOR])
    auditor = UserFactory(provider=provider, roles=[Role.AUDITOR])
    credentials = {"email": "officer@disco.example", "password": PASSWORD}

    redis_for_everything.stop()
    signed_in = api.post("/api/auth/login", credentials, format="json")
    page = client.post("/sign-in", credentials)
    run = as_role(officer, Role.SUPER_CREATOR).post("/api/billing-runs", {"month": "2024-01"}, format="json")
    question = as_role(auditor, Role.AUDITOR).post(
        "/api/audit/query", {"question": "Revenue by month"}, format="json"
    )

    assert (signed_in.status_code, page.status_code) == (200, 302)
    assert (run.status_code, run["Retry-After"], run.json()["code"]) == (503, "60", "queue_unavailable")
    assert (question.status_code, question["Retry-After"]) == (503, "60")
    assert not BillingRun.objects.exists() and not AIQuery.objects.exists()

    redis_for_everything.start()
    again = as_role(officer, Role.SUPER_CREATOR).post(
        "/api/billing-runs", {"month": "2024-01"}, format="json"
    )

    assert again.status_code == 202
    assert BillingRun.objects.get().dispatched_at is not None  # its chunks are queued for the workers
