import os
import secrets
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from accounts.models import User
from accounts.roles import Role
from billing.models import Customer, MeterReading
from invoicing.management.commands.demo_data import DEMO_PASSWORD
from providers.models import Provider, TariffRow
from providers.services import flat_price_in_force

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DATABASE_URL": "sqlite:////tmp/deploy-check.sqlite3",
    "DJANGO_ALLOWED_HOSTS": "billing.example",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "NUM_PROXIES": "1",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        check=False,
    )


def test_production_settings_pass_the_deploy_checks():
    result = manage("check", "--deploy", "--fail-level", "DEBUG", env=PRODUCTION_ENV)

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "DJANGO_SECRET_KEY"}

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


@pytest.mark.django_db
def test_swagger_ui_is_served_with_its_assets_from_the_product(client):
    page = client.get("/api/docs/")
    schema = client.get("/api/schema/")

    assert page.status_code == 200
    assert b"/static/drf_spectacular_sidecar/swagger-ui-dist/" in page.content
    assert schema.status_code == 200
    assert b"/api/auth/select-role" in schema.content


@pytest.mark.django_db
def test_demo_data_loads_one_login_per_role_and_is_idempotent(api, time_machine):
    # Mid-January 2025: the demo carries the sample on through December 2024 (three months).
    time_machine.move_to(datetime(2025, 1, 15, 9, tzinfo=UTC), tick=False)
    call_command("demo_data")
    call_command("demo_data")

    assert sorted(Provider.objects.values_list("code", flat=True)) == ["DISCO", "NEPCO"]
    held = {role for user in User.objects.all() for role in user.role_names}
    assert held == set(Role.values)
    # 8 demo logins and the sample's 75 customers, the first of whom is the demo customer login.
    assert User.objects.count() == 8 + 74
    assert Customer.objects.get(number="LHR-RES-0001").user.email == "aliahmad.101@hmail.com"
    assert MeterReading.objects.count() == 2239 + 3 * 75
    # The sample's 68 tariff rows, and the same 68 carried on from 2025-01-01.
    assert TariffRow.objects.filter(provider__code="DISCO").count() == 2 * 68
    assert flat_price_in_force(
        provider=Provider.objects.get(code="NEPCO"), day=timezone.localdate()
    ).rate == Decimal("32.5")
    response = api.post(
        "/api/auth/login", {"email": "creator@disco.example", "password": DEMO_PASSWORD}, format="json"
    )
    assert response.json()["selectedRole"] == "Invoice_Creator"
