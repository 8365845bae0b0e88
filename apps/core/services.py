"""Generic create/update/delete for models without logic of their own; apps with logic write their own services."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction

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


@contextmanager
def integrity_as_field_error(*, field: str, message: str) -> Iterator[None]:
    """Two concurrent saves can both pass full_clean; the database's unique constraint then decides, and
    the loser gets a 400 on `field` instead of a 500. The savepoint keeps the outer transaction usable."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError as exc:
        raise ValidationError({field: message}) from exc
