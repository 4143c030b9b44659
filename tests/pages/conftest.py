import pytest
from django.test import Client

from accounts.sessions import SESSION_ROLE_KEY


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
