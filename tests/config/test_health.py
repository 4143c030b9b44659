"""/healthz and /readyz on the embedded default: no sign-in, each check named, pending migrations
refused. The real stack's outages (PostgreSQL, Redis, the workers) are in tests/realstack/test_readiness.py."""

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

pytestmark = pytest.mark.django_db

CHECKS = {"database", "migrations", "cache", "broker", "worker"}


def test_healthz_answers_without_touching_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_names_every_check_and_says_the_workers_are_not_used_when_tasks_run_in_process(client):
    response = client.get("/readyz")

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert set(body["checks"]) == CHECKS
    assert all(check["status"] == "ok" for check in body["checks"].values())
    assert body["checks"]["worker"]["reason"] == "not used (tasks run in process)"
    assert body["checks"]["broker"]["reason"] == "not used (tasks run in process)"
    assert response["Cache-Control"].startswith("max-age=0")


def test_readyz_answers_503_naming_a_migration_not_applied(client):
    app, name = MigrationLoader(connection).graph.leaf_nodes("invoicing")[0]
    MigrationRecorder(connection).record_unapplied(app, name)  # as a release whose migration is not run yet

    response = client.get("/readyz")

    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "failed"
    assert body["checks"]["migrations"]["status"] == "failed"
    assert body["checks"]["migrations"]["reason"] == f"1 migration(s) not applied: invoicing.{name}"
    assert body["checks"]["database"]["status"] == "ok"


def test_readyz_answers_503_when_the_cache_is_down(client, cache_down):
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["cache"] == {
        "status": "failed",
        "reason": "unreachable (ConnectionError)",
    }


def test_readyz_answers_503_when_the_broker_is_down_without_showing_its_address(client, broker_down):
    response = client.get("/readyz")

    checks = response.json()["checks"]
    assert response.status_code == 503
    assert checks["broker"] == {"status": "failed", "reason": "unreachable (ConnectionError)"}
    assert checks["worker"]["status"] == "failed"
    assert "127.0.0.1" not in response.content.decode()
