from accounts.roles import Role
from auditing.models import AuditLog
from tests.factories import PASSWORD, UserFactory


def sign_in(client, email, password=PASSWORD, next_url=""):
    return client.post("/sign-in", {"email": email, "password": password, "next": next_url})


def test_sign_in_with_one_role_lands_on_its_start_page(client, provider):
    user = UserFactory(provider=provider, roles=[Role.SUPER_CREATOR], password=PASSWORD)

    response = sign_in(client, user.email)

    assert response.status_code == 302
    assert client.get(response.url, follow=True).request["PATH_INFO"] == "/dashboard"


def test_sign_in_with_several_roles_shows_a_card_per_role(client, provider):
    user = UserFactory(provider=provider, roles=[Role.INVOICE_CREATOR, Role.AUDITOR], password=PASSWORD)

    response = sign_in(client, user.email)
    cards = client.get(response.url)

    assert response.url.startswith("/choose-role")
    html = cards.content.decode()
    assert 'data-testid="role-card-Invoice_Creator"' in html
    assert 'data-testid="role-card-Auditor"' in html
    assert 'data-testid="role-card-Admin"' not in html


def test_choosing_a_role_not_held_is_refused_with_the_roles_held(client, provider):
    user = UserFactory(provider=provider, roles=[Role.INVOICE_CREATOR, Role.AUDITOR], password=PASSWORD)
    sign_in(client, user.email)

    response = client.post("/choose-role", {"role": Role.ADMIN})

    assert response.status_code == 400
    assert "You do not hold the role Admin" in response.content.decode()


def test_wrong_password_is_shown_next_to_the_password_and_keeps_the_email(client, provider):
    user = UserFactory(provider=provider, roles=[Role.AUDITOR], password=PASSWORD)

    response = sign_in(client, user.email, password="not-the-password")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_password_error"' in html and "The email or password is not correct." in html
    assert f'value="{user.email}"' in html
    assert "{#" not in html and "{%" not in html  # no template source leaks onto the page
    assert AuditLog.objects.filter(action="login_failed").exists()


def test_switching_role_changes_the_navigation(signed_in, provider):
    user = UserFactory(provider=provider, roles=[Role.INVOICE_CREATOR, Role.AUDITOR])
    client = signed_in(user, Role.INVOICE_CREATOR)

    client.post("/switch-role", {"role": Role.AUDITOR})
    page = client.get("/dashboard").content.decode()

    assert 'data-testid="acting-role">Auditor<' in page
    assert AuditLog.objects.filter(action="role_switched", actor_id=user.pk).exists()


def test_a_revoked_role_sends_the_session_back_to_the_role_cards(signed_in, provider):
    user = UserFactory(provider=provider, roles=[Role.INVOICE_CREATOR, Role.AUDITOR])
    client = signed_in(user, Role.AUDITOR)
    user.roles.filter(role=Role.AUDITOR).delete()

    response = client.get("/dashboard")

    assert response.status_code == 302 and response.url.startswith("/choose-role")


def test_pages_need_a_signed_in_session(client):
    response = client.get("/dashboard")

    assert response.status_code == 302 and response.url.startswith("/sign-in?next=/dashboard")


def test_sign_out_ends_the_session(signed_in, provider):
    user = UserFactory(provider=provider, roles=[Role.AUDITOR])
    client = signed_in(user, Role.AUDITOR)

    client.post("/sign-out")

    assert client.get("/dashboard").status_code == 302


def test_repeated_wrong_passwords_are_stopped_as_the_api_stops_them(client, provider, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"login": "20/min", "login_email": "3/min"},
    }
    user = UserFactory(provider=provider, roles=[Role.AUDITOR])
    for _ in range(3):
        sign_in(client, user.email, password="guess")

    response = sign_in(client, user.email)

    assert response.status_code == 429
    assert "Too many sign-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session
