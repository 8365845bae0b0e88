from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "apps.tenancy"
    label = "bulwark_tenancy"
    verbose_name = "Tenancy"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from apps.tenancy import checks, login_limit, schema  # noqa: F401  (system checks, signal receivers, OpenAPI auth)
        from apps.tenancy.models import ApiToken, Tenant
        from apps.tenancy.selectors import tenant_slug_invalidate, token_cache_invalidate

        for model in (Tenant, ApiToken):
            post_save.connect(token_cache_invalidate, sender=model, dispatch_uid=f"token-cache-save-{model.__name__}")
            post_delete.connect(token_cache_invalidate, sender=model, dispatch_uid=f"token-cache-del-{model.__name__}")
        post_save.connect(tenant_slug_invalidate, sender=Tenant, dispatch_uid="tenant-slug-save")
        post_delete.connect(tenant_slug_invalidate, sender=Tenant, dispatch_uid="tenant-slug-del")
