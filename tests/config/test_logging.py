"""JSON log lines (LOG_FORMAT=json, production's default) name the request or task and who acted."""

import io
import json
import logging.config

import pytest

from accounts import tasks
from accounts.roles import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_lines(settings):
    """Each line the console handler writes while the test runs, parsed; the LOGGING of production
    with its JSON formatter, writing to a buffer."""
    written = io.StringIO()
    config = {
        **settings.LOGGING,
        "handlers": {
            "console": {**settings.LOGGING["handlers"]["console"], "formatter": "json", "stream": written}
        },
    }
    logging.config.dictConfig(config)
    yield lambda: [json.loads(line) for line in written.getvalue().splitlines()]
    logging.config.dictConfig(settings.LOGGING)


def test_a_refused_requests_line_names_its_request_id_user_role_and_provider(
    admin_api, admin_user, json_lines
):
    response = admin_api.get("/api/invoices/999999")

    line = next(line for line in json_lines() if line["logger"] == "django.request")
    assert response.status_code == 404
    assert line["level"] == "WARNING"
    assert line["message"] == "Not Found: /api/invoices/999999"
    assert line["request_id"] == response["X-Request-ID"]
    assert (line["user_id"], line["role"], line["provider_id"]) == (
        admin_user.pk,
        Role.ADMIN,
        admin_user.provider_id,
    )
    assert line["time"].endswith("+00:00")


def test_a_tasks_line_names_the_task_as_its_request_and_the_system_as_acting(json_lines):
    result = tasks.purge_expired_auth_records.delay()

    line = next(line for line in json_lines() if line["logger"] == "accounts.tasks")
    assert line["message"] == "purged 0 selection tickets and 0 refresh tokens"
    assert line["request_id"] == result.id
    assert (line["user_id"], line["role"], line["provider_id"]) == (None, "system", None)
