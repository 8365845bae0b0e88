from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "bulwark_audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from apps.audit.services import record
        from apps.core.audited import register_writer

        register_writer(record)  # core's @audited captures the changes; this app stores them
