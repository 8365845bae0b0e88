"""Generic create/update/delete for models without logic of their own; apps with logic write their own services."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from django.db import models, transaction

M = TypeVar("M", bound=models.Model)


@transaction.atomic
def model_create(*, model: type[M], data: Mapping[str, Any], **fixed: Any) -> M:
    instance = model(**fixed, **data)
    instance.full_clean()
    instance.save()
    return instance


@transaction.atomic
def model_update(*, instance: M, data: Mapping[str, Any]) -> M:
    for field, value in data.items():
        setattr(instance, field, value)
    instance.full_clean()
    instance.save()
    return instance


@transaction.atomic
def model_delete(*, instance: models.Model) -> None:
    instance.delete()
