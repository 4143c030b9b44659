"""Bad input and an unreachable database get a clear answer in the API's error shape, never a 500
or Django's HTML page; the pages keep their own HTML pages."""

import json

import pytest
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError, connection
from django.test import RequestFactory, override_settings

from accounts.roles import Role
from config import errors
from tests.factories import ConnectionFactory, UserFactory

pytestmark = pytest.mark.django_db

# About 1,000 levels: deeper than Python's JSON parser can recurse.
NESTED_1000_DEEP = "[" * 1000 + "]" * 1000
CSV_HEADER = (
    "connection_id,timestamp,import_peak,import_off_peak,export_peak,export_off_peak,meter_replaced\n"
)


@pytest.fixture
def auditor_api(as_role, provider):
    return as_role(UserFactory(provider=provider, roles=[Role.AUDITOR]), Role.AUDITOR)


@pytest.fixture
def creator_api(as_role, provider):
    return as_role(UserFactory(provider=provider, roles=[Role.SUPER_CREATOR]), Role.SUPER_CREATOR)


@pytest.mark.parametrize("path", ["/api/auth/login", "/api/auth/refresh", "/api/admin/users"])
def test_a_json_body_nested_1000_deep_is_a_400(admin_api, path):
    response = admin_api.generic("POST", path, NESTED_1000_DEEP, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "The JSON body is nested too deeply: at most 32 levels of lists and objects.",
        "code": "too_deep",
    }


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/audit/logs/search?invoiceNumber=INV%00-1", "invoiceNumber"),
        ("/api/audit/invoices/search?number=INV%00-1", "number"),
        ("/api/invoices?customer=%00", "customer"),
    ],
)
def test_a_nul_character_in_a_query_parameter_is_a_400_naming_it(auditor_api, admin_api, path, parameter):
    response = auditor_api.get(path)

    assert response.status_code == 400
    assert response.json() == {
        "detail": f"Please correct: {parameter}.",
        "code": "invalid",
        "fields": {parameter: ["Remove the NUL character (\\u0000): text may not contain one."]},
    }


def test_a_nul_character_in_the_session_cookie_is_a_400(client):
    client.cookies["sessionid"] = "abcdefgh\x00ijklmnop"

    response = client.get("/")

    assert response.status_code == 400


def test_a_nul_character_in_a_json_field_is_a_400_naming_it(creator_api):
    rows = [{"connection_id": "CONN\x00-1", "timestamp": "2024-01-28T09:00:00+05:00", "import_peak": "1"}]

    response = creator_api.post("/api/readings/upload", rows, format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "[0].connection_id": ["Remove the NUL character (\\u0000): text may not contain one."]
    }


def test_a_nul_character_in_an_uploaded_csv_is_a_400(creator_api, provider):
    connection_row = f"{ConnectionFactory(provider=provider).number}\x00,2024-01-28T09:00,1,1,0,0,false\n"
    upload = SimpleUploadedFile("readings.csv", (CSV_HEADER + connection_row).encode(), "text/csv")

    response = creator_api.post("/api/readings/upload", {"file": upload}, format="multipart")

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "file": [
            "The file contains a NUL character. Remove the NUL character (\\u0000): text may not contain one."
        ]
    }


@pytest.mark.parametrize("instant", ["9999-12-31T23:59:59-23:00", "0001-01-01T00:00:00+05:00"])
def test_an_instant_beyond_the_calendar_in_utc_is_a_400(auditor_api, instant):
    response = auditor_api.get("/api/audit/logs", {"since": instant})

    assert response.status_code == 400
    assert response.json()["fields"] == {"since": ["Give a date and time between the years 1 and 9999."]}


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1_000)
def test_a_json_body_over_the_upload_limit_is_a_413_in_json(admin_api):
    body = '{"name": "' + "x" * 2_000 + '"}'

    response = admin_api.generic("POST", "/api/admin/users", body, content_type="application/json")

    assert response.status_code == 413
    assert response.json() == {
        "detail": "The request is too large: send at most 1,000 bytes of data (files aside) at a time.",
        "code": "too_large",
        "extra": {"limitBytes": 1000},
    }


def test_a_wrong_method_is_a_405_in_json(admin_api):
    response = admin_api.delete("/api/invoices")

    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "DELETE" not allowed.', "code": "method_not_allowed"}


@pytest.mark.parametrize(
    ("handler", "exception", "status"),
    [(errors.bad_request, SuspiciousOperation(), 400), (errors.permission_denied, PermissionDenied(), 403)],
)
def test_django_level_refusals_answer_json_under_api_and_html_elsewhere(handler, exception, status):
    api = handler(RequestFactory().get("/api/invoices"), exception)
    page = handler(RequestFactory().get("/invoices"), exception)

    assert (api.status_code, api["Content-Type"]) == (status, "application/json")
    assert set(json.loads(api.content)) == {"detail", "code"}
    assert (page.status_code, page["Content-Type"]) == (status, "text/html; charset=utf-8")


def refuse_connection() -> None:
    """What a query meets when PostgreSQL refuses connections (down, restarting)."""
    raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')


def test_with_the_database_unreachable_the_api_answers_503_json_then_recovers(admin_api, monkeypatch):
    admin_api.raise_request_exception = False

    monkeypatch.setattr(connection, "ensure_connection", refuse_connection)
    down = admin_api.get("/api/auth/me")
    monkeypatch.undo()
    back = admin_api.get("/api/auth/me")

    assert down.status_code == 503
    assert down["Retry-After"] == "30"
    assert down.json()["code"] == "database_unavailable"
    assert down.json()["detail"].startswith("The service cannot reach its database right now.")
    assert back.status_code == 200


def test_with_the_database_unreachable_a_page_answers_a_friendly_503(client, admin_user, monkeypatch):
    client.force_login(admin_user)
    client.raise_request_exception = False

    monkeypatch.setattr(connection, "ensure_connection", refuse_connection)
    response = client.get("/")

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert b"We cannot reach our records right now" in response.content


def test_a_kept_database_connection_is_checked_before_each_request_uses_it(settings):
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True
