from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Connections and meter readings"

    def ready(self) -> None:
        from accounts.messaging import register_language_source
        from billing.selectors import customer_language_of

        # A customer's e-mails (a password reset too) are written in the language they chose.
        register_language_source(customer_language_of)
