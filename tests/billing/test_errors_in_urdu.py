import pytest

from accounts.roles import Role
from billing.models import ConnectionStatus
from tests.factories import ConnectionFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_refused_reading_is_explained_in_the_language_asked_for(as_role):
    connection = ConnectionFactory(status=ConnectionStatus.DISCONNECTED, number="LHR-SC-000007")
    clerk = as_role(
        UserFactory(provider=connection.provider, roles=[Role.INVOICE_CREATOR]), Role.INVOICE_CREATOR
    )
    url = f"/api/connections/{connection.pk}/readings"
    reading = {"takenAt": "2025-01-31T23:59:00+05:00", "importPeak": "10", "importOffPeak": "20"}

    urdu = clerk.post(url, reading, format="json", HTTP_ACCEPT_LANGUAGE="ur")
    english = clerk.post(url, reading, format="json", HTTP_ACCEPT_LANGUAGE="en")

    assert urdu.status_code == english.status_code == 400
    assert urdu.json() == {
        "detail": "کنکشن LHR-SC-000007 منقطع ہے؛ اس کی کوئی ریڈنگ نہیں لی جاتی۔",  # noqa: RUF001
        "code": "reading_refused",
    }
    assert english.json() == {
        "detail": "Connection LHR-SC-000007 is disconnected; it takes no readings.",
        "code": "reading_refused",
    }
