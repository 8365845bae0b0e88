"""`Cache-Control: private` for views whose body depends on who asks, so no shared cache keeps one copy for all.

Bulwark's own response cache stores such an answer only per user (a policy with `vary_on: user`); proxies
and CDNs in front do not store it at all. `Vary: Authorization, Cookie` says the same to caches that only
read `Vary`. Function views use Django's own `cache_control(private=True)` decorator.
"""
from __future__ import annotations

from django.http import HttpResponseBase
from django.utils.cache import patch_cache_control, patch_vary_headers


def mark_private(response: HttpResponseBase) -> HttpResponseBase:
    patch_cache_control(response, private=True)
    patch_vary_headers(response, ("Authorization", "Cookie"))
    return response


class PrivateResponseMixin:
    """For a DRF view: every answer (errors included) is marked private."""

    def finalize_response(self, request, response, *args, **kwargs):
        return mark_private(super().finalize_response(request, response, *args, **kwargs))
