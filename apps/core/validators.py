"""Field validators shared by models and serializers of every app."""
from __future__ import annotations

import math

from django.core.exceptions import ValidationError


def validate_finite(value: float | None) -> None:
    """NaN passes every min/max comparison, and NaN or infinity cannot be written as JSON (audit, API)."""
    if value is not None and not math.isfinite(value):
        raise ValidationError("Must be a finite number.", code="invalid")
