"""PostgreSQL unreachable or restarted, through the real WSGI handler (which, unlike the test client,
checks the kept connections at the start and end of each request as a server does)."""

import socket

import psycopg
import pytest
from django.core.wsgi import get_wsgi_application
from django.db import connection
from werkzeug.test import Client

from accounts.roles import Role
from accounts.tokens import token_pair_for
from tests.factories import UserFactory

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def me(provider):
    """`GET /api/auth/me` as an administrator, through the WSGI application a server runs."""
    user = UserFactory(provider=provider, roles=[Role.ADMIN])
    headers = {"Authorization": f"Bearer {token_pair_for(user=user, role=Role.ADMIN).access}"}
    client = Client(get_wsgi_application())
    return lambda: client.get("/api/auth/me", headers=headers)


def a_closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_with_postgresql_unreachable_the_api_answers_503_json_then_recovers(me, monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "HOST", "127.0.0.1")
    monkeypatch.setitem(connection.settings_dict, "PORT", a_closed_port())
    connection.close()

    down = me()
    monkeypatch.undo()
    back = me()

    assert down.status_code == 503
    assert down.headers["Retry-After"] == "30"
    assert down.json["code"] == "database_unavailable"
    assert back.status_code == 200


def test_after_postgresql_drops_a_kept_connection_the_next_request_succeeds(me, monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 600)
    connection.close()
    assert me().status_code == 200  # opens the connection that is kept between requests
    params = connection.settings_dict
    with psycopg.connect(
        host=params["HOST"],
        port=params["PORT"],
        user=params["USER"],
        password=params["PASSWORD"],
        dbname=params["NAME"],
        autocommit=True,
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])

    after_restart = me()

    assert after_restart.status_code == 200
