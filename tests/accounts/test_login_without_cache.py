"""Signing in while the shared cache (Redis) is down: the sign-in limits are counted in the server
process's memory meanwhile, never a 500 (accounts.throttles says why)."""

import logging

import pytest

from accounts.roles import Role
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/api/auth/login"


def test_login_answers_with_tokens_while_the_cache_is_down(api, provider, cache_down, caplog):
    UserFactory(provider=provider, email="clerk@disco.example", roles=[Role.INVOICE_CREATOR])

    with caplog.at_level(logging.WARNING, logger="accounts.throttles"):
        response = api.post(LOGIN, {"email": "clerk@disco.example", "password": PASSWORD}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["selectedRole"] == Role.INVOICE_CREATOR
    assert "sign-in limits counted in this process only" in caplog.text


def test_login_limits_still_hold_while_the_cache_is_down(api, provider, cache_down, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"login": "100/min", "login_email": "3/min"},
    }
    UserFactory(provider=provider, email="target@disco.example")
    wrong = {"email": "target@disco.example", "password": "guess-guess-guess"}

    answers = [api.post(LOGIN, wrong, format="json").status_code for _ in range(4)]

    assert answers == [401, 401, 401, 429]


def test_the_sign_in_page_signs_in_while_the_cache_is_down(client, provider, cache_down):
    UserFactory(provider=provider, email="clerk@disco.example", roles=[Role.INVOICE_CREATOR])

    response = client.post("/sign-in", {"email": "clerk@disco.example", "password": PASSWORD})

    assert response.status_code == 302
    assert client.get(response.url, follow=True).status_code == 200
