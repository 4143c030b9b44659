import logging

import pytest
from drf_spectacular.generators import SchemaGenerator

from accounts.roles import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_an_unknown_api_address_answers_json_404(api):
    response = api.get("/api/no-such-thing")

    assert response.status_code == 404
    assert response.json() == {"detail": "No such address in the API.", "code": "not_found"}


def test_field_errors_name_each_field(admin_api):
    response = admin_api.post(
        "/api/admin/users", {"email": "not-an-email", "roles": ["Wizard"]}, format="json"
    )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["fields"]) == {"email", "name", "roles"}
    assert body["detail"].startswith("Please correct: ")


def test_a_business_rule_refusal_has_detail_code_and_extra(admin_api, provider):
    user = UserFactory(provider=provider, roles=[Role.AUDITOR])

    response = admin_api.delete(f"/api/admin/users/{user.pk}/roles/Auditor")

    assert response.status_code == 409
    assert response.json() == {
        "detail": "Cannot remove the last role: a user must keep at least one role.",
        "code": "role_last",
        "extra": {"role": "Auditor"},
    }


def test_a_malformed_json_body_is_a_400_not_a_500(admin_api):
    response = admin_api.generic("POST", "/api/admin/users", "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_every_response_carries_a_request_id_and_echoes_a_valid_one(api):
    generated = api.get("/api/auth/me")
    echoed = api.get("/api/auth/me", HTTP_X_REQUEST_ID="retry-7f3a9c21")
    refused = api.get("/api/auth/me", HTTP_X_REQUEST_ID="bad id\nwith newline")
    trailing_newline = api.get("/api/auth/me", HTTP_X_REQUEST_ID="abcdefgh\n")

    assert len(generated["X-Request-ID"]) == 32
    assert echoed["X-Request-ID"] == "retry-7f3a9c21"
    assert refused["X-Request-ID"] != "bad id\nwith newline"
    assert (trailing_newline.status_code, len(trailing_newline["X-Request-ID"])) == (401, 32)


def test_log_lines_carry_the_request_id(api, caplog):
    with caplog.at_level(logging.WARNING, logger="django.request"):
        api.get("/api/auth/me", HTTP_X_REQUEST_ID="trace-0001-abcd")

    records = [r for r in caplog.records if r.name == "django.request"]
    assert [r.request_id for r in records] == ["trace-0001-abcd"]


def test_the_schema_documents_every_operations_errors_in_the_one_shape():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = [operation for item in schema["paths"].values() for operation in item.values()]
    error_shape = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}

    undocumented = [
        operation["operationId"]
        for operation in operations
        if not {"400", "401", "503"} <= set(operation["responses"])
    ]
    shapeless = [
        (operation["operationId"], status)
        for operation in operations
        for status, response in operation["responses"].items()
        if status >= "400" and response.get("content") != error_shape
    ]
    assert (undocumented, shapeless) == ([], [])
    assert schema["components"]["schemas"]["Error"]["required"] == ["detail", "code"]
