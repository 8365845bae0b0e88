from django.contrib.admin.apps import AdminConfig


class BulwarkAdminConfig(AdminConfig):
    """Django's admin with Bulwark's site: tenant members sign in, scoped to their active tenant."""

    default_site = "apps.tenancy.admin_site.BulwarkAdminSite"
