"""`@audited`: models whose saves and deletes are recorded automatically, from any door.

It lives in core so that every layer (tenancy included) can mark its models; the audit app writes the
events by registering its writer (`register_writer`, from its AppConfig.ready). Saves and deletes are
captured by signals; `QuerySet.delete()` sends them per object, so it is captured
too. `QuerySet.update()`, `bulk_update()` and `bulk_create()` send no signals, so on an audited model
`AuditedQuerySet` refuses them, naming what to call instead. One narrow allowance: an `update()` that
touches only fields excluded from audit (operational data such as `ApiToken.last_used_at`) goes through.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.exceptions import ImproperlyConfigured
from django.db import models, router, transaction
from django.db.models.signals import post_delete, post_save, pre_save

MASK = "••••••"


@dataclass(frozen=True)
class AuditOptions:
    exclude: frozenset[str] = field(default_factory=frozenset)
    secret: frozenset[str] = field(default_factory=frozenset)


_registry: dict[type[models.Model], AuditOptions] = {}
_writer: Callable[..., object] | None = None


def register_writer(writer: Callable[..., object]) -> None:
    """Install the function that stores one event: `writer(action=..., obj=..., changes=...)`, called inside
    the transaction of the change. The audit app registers `apps.audit.services.record`."""
    global _writer
    _writer = writer


def _write(*, action: str, obj: models.Model, changes: dict) -> None:
    if _writer is None:
        raise ImproperlyConfigured(
            "An @audited model changed but no audit writer is registered: add 'apps.audit' to INSTALLED_APPS."
        )
    _writer(action=action, obj=obj, changes=changes)


class BulkWriteRefused(Exception):
    """A bulk write that would change an audited model without leaving an audit event."""


def is_audited(model: type[models.Model]) -> bool:
    return model in _registry


def options_of(model: type[models.Model]) -> AuditOptions:
    return _registry[model]


class AuditedQuerySet(models.QuerySet):
    """The queryset of every audited model (TenantQuerySet derives from it): no silent bulk writes."""

    def _refuse(self, operation: str, fields=None) -> None:
        options = _registry.get(self.model)
        if options is None or (fields is not None and set(fields) <= options.exclude):
            return
        name = self.model.__name__
        raise BulkWriteRefused(
            f"{name}.objects.{operation}() would change audited rows without an audit event. "
            f"Save each object instead (the app's service, or apps.core.services.model_update), "
            f"or, for a named bulk operation, write the rows one by one inside a transaction that also "
            f"calls apps.audit.services.record(action=..., changes=...)."
        )

    def update(self, **kwargs):
        self._refuse("update", fields=kwargs)
        return super().update(**kwargs)

    def bulk_update(self, objs, fields, batch_size=None):
        self._refuse("bulk_update", fields=fields)
        return super().bulk_update(objs, fields, batch_size=batch_size)

    def bulk_create(self, objs, *args, **kwargs):
        self._refuse("bulk_create")
        return super().bulk_create(objs, *args, **kwargs)


def audited(*, exclude: tuple[str, ...] = (), secret: tuple[str, ...] = ()):
    """Class decorator: record create/update/delete of this model; `secret` fields appear masked."""

    def register(model: type[models.Model]) -> type[models.Model]:
        queryset_class = getattr(model._default_manager, "_queryset_class", None)
        if queryset_class is None or not issubclass(queryset_class, AuditedQuerySet):
            raise ImproperlyConfigured(
                f"@audited {model._meta.label}: its default manager must build an AuditedQuerySet "
                f"(TenantQuerySet is one), or bulk writes would escape the audit trail."
            )
        _registry[model] = AuditOptions(exclude=frozenset(exclude), secret=frozenset(secret))
        model.save_base = _atomic_save(model.save_base)
        pre_save.connect(_remember_old, sender=model, weak=False, dispatch_uid=f"audit-pre-{model._meta.label}")
        post_save.connect(_on_save, sender=model, weak=False, dispatch_uid=f"audit-save-{model._meta.label}")
        post_delete.connect(_on_delete, sender=model, weak=False, dispatch_uid=f"audit-del-{model._meta.label}")
        return model

    return register


def _atomic_save(save_base):
    """Make a save and its event one transaction even in autocommit (Django sends post_save after the
    write's own transaction). Inside a transaction it adds nothing; deletes already send their signals
    inside one."""

    @functools.wraps(save_base)
    def atomic_save_base(self, *args, **kwargs):
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using, savepoint=False):
            return save_base(self, *args, **kwargs)

    return atomic_save_base


def _field_values(instance: models.Model, options: AuditOptions) -> dict:
    return {
        f.name: _jsonable(f.value_from_object(instance))
        for f in instance._meta.concrete_fields
        if f.name not in options.exclude
    }


def _jsonable(value):
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return str(value)


def _diff(old: dict, new: dict, options: AuditOptions) -> dict[str, list]:
    """{field: [old, new]} of the fields that differ; a secret shows only that it was set or changed."""
    changes = {}
    for name in dict.fromkeys([*old, *new]):  # model field order, for a readable diff
        before, after = old.get(name), new.get(name)
        if before == after or (before in (None, "") and after in (None, "")):
            continue
        if name in options.secret:
            before, after = (MASK if before else before), (MASK if after else after)
        changes[name] = [before, after]
    return changes


def _remember_old(sender, instance, raw=False, **kwargs) -> None:
    if raw or instance.pk is None:
        instance._audit_old = None
        return
    old = sender._base_manager.filter(pk=instance.pk).first()
    instance._audit_old = _field_values(old, _registry[sender]) if old is not None else None


def _on_save(sender, instance, created, raw=False, update_fields=None, **kwargs) -> None:
    if raw:
        return
    options = _registry[sender]
    old = getattr(instance, "_audit_old", None)
    new = _field_values(instance, options)
    if update_fields is not None and old is not None:
        # save(update_fields=...) writes only those; other in-memory edits were not saved and are no change.
        saved = {instance._meta.get_field(name).name for name in update_fields}
        new = {name: (value if name in saved else old.get(name)) for name, value in new.items()}
    changes = _diff(old or {}, new, options)
    if created or old is None:
        _write(action="create", obj=instance, changes=changes)
    elif changes:
        _write(action="update", obj=instance, changes=changes)


def _on_delete(sender, instance, **kwargs) -> None:
    options = _registry[sender]
    _write(action="delete", obj=instance, changes=_diff(_field_values(instance, options), {}, options))
