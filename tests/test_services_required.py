"""When CI requires the real services, prove the suite really runs on them."""
import os

import pytest
from django.conf import settings
from django.db import connection

pytestmark = pytest.mark.skipif(os.environ.get("BULWARK_REQUIRE_SERVICES") != "1", reason="services not required")


@pytest.mark.django_db
def test_database_is_postgresql():
    assert connection.vendor == "postgresql"


def test_store_is_redis():
    from apps.core.store import redis_client

    client = redis_client()
    assert client is not None and client.ping()
    assert settings.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache"
