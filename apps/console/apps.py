from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "apps.console"
    label = "bulwark_console"
    verbose_name = "Console"
    demo = "apps.console.demo.seed"  # seed_demo's hook: an hour of history so the charts start full

    def ready(self) -> None:
        from django.contrib import admin

        from apps.console.conf import console_settings

        console_settings.validate()
        # The admin index is the console. The site class belongs to tenancy (a lower layer that cannot know
        # the console), so the top layer points the site at its template.
        admin.site.index_template = "admin/console/index.html"
