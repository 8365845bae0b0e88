"""BULWARK["RESILIENCE"]: validated loudly, and the backend chosen by a dotted path."""
from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.resilience.backends import backend_loader, get_backend
from apps.resilience.backends.memory import MemoryBackend
from apps.resilience.conf import resilience_settings


@pytest.mark.parametrize(("section", "message"), [
    ({"FLUSH_INTERVAL_S": 0}, "FLUSH_INTERVAL_S"),
    ({"BACKEND": "memory"}, "BACKEND"),
    ({"FLUSH_INTERVALL_S": 1}, "Unknown setting"),
])
def test_bad_settings_fail_loudly(settings, section, message):
    settings.BULWARK = {**settings.BULWARK, "RESILIENCE": section}
    with pytest.raises(ImproperlyConfigured, match=message):
        resilience_settings.validate()


def test_the_backend_is_chosen_by_its_dotted_path(settings):
    settings.BULWARK = {**settings.BULWARK,
                        "RESILIENCE": {"BACKEND": "apps.resilience.backends.memory.MemoryBackend"}}
    backend_loader.reset()
    assert isinstance(get_backend(), MemoryBackend)


def test_the_automatic_backend_follows_the_shared_store(settings):
    from apps.core.store import redis_client

    backend_loader.reset()
    expected = "RedisBackend" if redis_client() is not None else "MemoryBackend"
    assert type(get_backend()).__name__ == expected
