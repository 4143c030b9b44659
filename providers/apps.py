from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "providers"
    verbose_name = "Providers and pricing"

    def ready(self) -> None:
        from providers import admin_display

        admin_display.install()
