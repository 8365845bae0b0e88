from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "bulwark_audit"
    verbose_name = "Audit trail"
