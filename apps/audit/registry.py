"""`@audited`: models whose saves and deletes are recorded automatically, from any door."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db import models
from django.db.models.signals import post_delete, post_save, pre_save

MASK = "••••••"


@dataclass(frozen=True)
class AuditOptions:
    exclude: frozenset[str] = field(default_factory=frozenset)
    secret: frozenset[str] = field(default_factory=frozenset)


_registry: dict[type[models.Model], AuditOptions] = {}


def is_audited(model: type[models.Model]) -> bool:
    return model in _registry


def audited(*, exclude: tuple[str, ...] = (), secret: tuple[str, ...] = ()):
    """Class decorator: record create/update/delete of this model; `secret` fields appear masked."""

    def register(model: type[models.Model]) -> type[models.Model]:
        _registry[model] = AuditOptions(exclude=frozenset(exclude), secret=frozenset(secret))
        pre_save.connect(_remember_old, sender=model, weak=False, dispatch_uid=f"audit-pre-{model._meta.label}")
        post_save.connect(_on_save, sender=model, weak=False, dispatch_uid=f"audit-save-{model._meta.label}")
        post_delete.connect(_on_delete, sender=model, weak=False, dispatch_uid=f"audit-del-{model._meta.label}")
        return model

    return register


def _field_values(instance: models.Model, options: AuditOptions) -> dict:
    values = {}
    for f in instance._meta.concrete_fields:
        if f.name in options.exclude:
            continue
        value = f.value_from_object(instance)
        values[f.name] = MASK if f.name in options.secret and value else _jsonable(value)
    return values


def _jsonable(value):
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return str(value)


def _remember_old(sender, instance, raw=False, **kwargs) -> None:
    if raw or instance.pk is None:
        instance._audit_old = None
        return
    old = sender._base_manager.filter(pk=instance.pk).first()
    instance._audit_old = _field_values(old, _registry[sender]) if old is not None else None


def _on_save(sender, instance, created, raw=False, **kwargs) -> None:
    if raw:
        return
    from apps.audit.services import record

    options = _registry[sender]
    new = _field_values(instance, options)
    old = getattr(instance, "_audit_old", None)
    if created or old is None:
        changes = {k: [None, v] for k, v in new.items() if v not in (None, "")}
        record(action="create", obj=instance, changes=changes)
        return
    changes = {k: [old.get(k), v] for k, v in new.items() if old.get(k) != v}
    if changes:
        record(action="update", obj=instance, changes=changes)


def _on_delete(sender, instance, **kwargs) -> None:
    from apps.audit.services import record

    old = _field_values(instance, _registry[sender])
    record(action="delete", obj=instance, changes={k: [v, None] for k, v in old.items() if v not in (None, "")})
