from django.apps import AppConfig


class AuditingConfig(AppConfig):
    name = "auditing"
    verbose_name = "Audit"

    def ready(self) -> None:
        from auditing import receivers

        receivers.connect()
