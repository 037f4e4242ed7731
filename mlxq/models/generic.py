"""The fallback for a ``model_type`` mlx-lm does not know (``--allow-unknown-architecture``):
no sanitize step, natural-sort parameter order, the generic quantize rule. The output may
differ from what mlx-lm would do with such a model, had it one; the converter says so."""

from __future__ import annotations

from .base import Family, Order

FAMILY = Family("generic", (), order=Order(natural=True), complete=False, generic=True)
