from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self) -> None:
        from accounts import messaging, schema  # noqa: F401  the auth extension of the OpenAPI schema, and
        # the builders of this app's e-mails (invitation, password reset)
