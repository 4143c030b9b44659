from django.apps import AppConfig


class InvoicingConfig(AppConfig):
    name = "invoicing"
    verbose_name = "Invoices and payments"

    def ready(self) -> None:
        from invoicing import messages

        messages.register()  # what the bill and payment e-mails say (accounts never imports invoicing)
