"""App config: the policy snapshots follow CachePolicy (imported here so every process registers them); watched
models invalidate tags and a changed policy retires its entries, whatever door saved them."""
from django.apps import AppConfig


class CachingConfig(AppConfig):
    name = "apps.caching"
    label = "bulwark_caching"
    verbose_name = "Caching"
    demo = "apps.caching.demo.seed"  # seed_demo's hook: seed(tenant=..., stdout=...)

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from apps.caching import snapshot  # noqa: F401  (follows CachePolicy saves and deletes)
        from apps.caching.models import CachePolicy
        from apps.caching.services import on_model_change, retire_policy_entries

        # Models named by a policy's invalidate_on_models invalidate its tags, whatever door saved them.
        post_save.connect(on_model_change, weak=False, dispatch_uid="bulwark-caching-watch-save")
        post_delete.connect(on_model_change, weak=False, dispatch_uid="bulwark-caching-watch-delete")
        post_save.connect(retire_policy_entries, sender=CachePolicy, dispatch_uid="bulwark-caching-policy-save")
        post_delete.connect(retire_policy_entries, sender=CachePolicy, dispatch_uid="bulwark-caching-policy-delete")
