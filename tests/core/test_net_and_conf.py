import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory, override_settings

from apps.core.conf import core_settings
from apps.core.net import client_ip


def request(remote, forwarded=None):
    meta = {"REMOTE_ADDR": remote}
    if forwarded:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **meta)


def test_forwarded_for_ignored_without_trusted_proxies():
    assert client_ip(request("203.0.113.9", "1.2.3.4")) == "203.0.113.9"


@override_settings(BULWARK={"CORE": {"TRUSTED_PROXIES": ["10.0.0.0/8"]}})
def test_forwarded_for_walked_from_the_right_through_trusted_proxies():
    assert client_ip(request("10.0.0.2", "6.6.6.6, 198.51.100.7, 10.0.0.5")) == "198.51.100.7"
    assert client_ip(request("203.0.113.9", "1.2.3.4")) == "203.0.113.9"


@override_settings(BULWARK={"CORE": {"NOPE": 1}})
def test_unknown_setting_is_loud():
    with pytest.raises(ImproperlyConfigured, match="NOPE"):
        _ = core_settings.TRUSTED_PROXIES


@override_settings(BULWARK={"CORE": {"SNAPSHOT_CHECK_INTERVAL_S": -1}})
def test_invalid_setting_names_itself():
    with pytest.raises(ImproperlyConfigured, match="SNAPSHOT_CHECK_INTERVAL_S"):
        _ = core_settings.SNAPSHOT_CHECK_INTERVAL_S
