# The invoicing fixtures (a flat-priced provider, a billable connection, staff, a payment method).
import pytest
from django.test import Client

from accounts.sessions import SESSION_ROLE_KEY
from tests.invoicing.conftest import cash, connection, creator, flat_provider, super_creator  # noqa: F401


@pytest.fixture
def signed_in(db):
    """A browser session signed in as `user`, acting in `role` (as after the role cards)."""

    def client_for(user, role: str) -> Client:
        client = Client()
        client.force_login(user)
        session = client.session
        session[SESSION_ROLE_KEY] = role
        session.save()
        return client

    return client_for
