"""Key composition: the tenant is always in the key; order of query parameters is not; listed headers are."""
from __future__ import annotations

from apps.caching import keys


def key(**overrides) -> str:
    params = dict(tenant_id=1, policy_id=7, host="api.example.com", path="/r/", query_string="a=1&b=2",
                  ignored_query_params=(), headers={}, vary_headers=(), principal="t")
    params.update(overrides)
    return keys.response_key(**params)


def test_tenant_is_the_hash_tag_of_every_key():
    assert "{c1}" in key()
    assert "{c2}" in key(tenant_id=2)
    assert key(tenant_id=1) != key(tenant_id=2)
    assert "{c1}" in keys.tag_key(tenant_id=1, tag="x")
    assert "{c1}" in keys.data_key(tenant_id=1, key="x")
    assert keys.lock_key(key()).startswith(key())


def test_query_order_and_encoding_are_normalised():
    assert key(query_string="b=2&a=1") == key(query_string="a=1&b=2")
    assert key(query_string="a=1&b=3") != key()
    assert key(query_string="a=1&b=2&b=1") == key(query_string="b=1&a=1&b=2")
    assert key(query_string="a=") != key(query_string="")
    assert key(query_string="a=%20") == key(query_string="a=+")


def test_ignored_parameters_do_not_count():
    assert key(query_string="a=1&b=2&utm=x", ignored_query_params=("utm",)) == key(ignored_query_params=("utm",))


def test_listed_headers_count_case_insensitively_and_others_do_not():
    base = key(vary_headers=("X-Region",), headers={"x-region": "eu"})
    assert base == key(vary_headers=("x-region",), headers={"x-region": "eu"})
    assert base != key(vary_headers=("X-Region",), headers={"x-region": "us"})
    assert key(headers={"x-other": "1"}) == key()


def test_accept_is_always_in_the_key():
    assert key(headers={"accept": "text/html"}) != key(headers={"accept": "application/json"})


def test_host_path_policy_and_principal_count():
    assert key(host="other.example.com") != key()
    assert key(path="/r/2/") != key()
    assert key(policy_id=8) != key()
    assert key(principal="u:user:1") != key(principal="u:user:2")


def test_principal_parts():
    assert keys.principal_part("user", role="viewer", actor_kind="token", actor_id="4") == "u:token:4"
    assert keys.principal_part("role", role="viewer", actor_kind="token", actor_id="4") == "r:viewer"
    assert keys.principal_part("tenant", role="viewer", actor_kind="token", actor_id="4") == "t"
