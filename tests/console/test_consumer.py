"""/ws/console/: who may connect, which tenant's state and events they get, and how often."""
from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.db import connections

from apps.console.auth import FORBIDDEN, UNAUTHENTICATED
from apps.core.live import publish
from tests.console.conftest import close, closed_with, receive_until
from tests.factories import MembershipFactory, TenantFactory
from tests.jobs.factories import JobRunFactory
from tests.resilience.factories import BreakerPolicyFactory

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def member(tenant, role="viewer"):
    return MembershipFactory(tenant=tenant, role=role).user


@sync_to_async
def tenants():
    return TenantFactory(slug="tenant-a", name="Tenant A"), TenantFactory(slug="tenant-b", name="Tenant B")


@sync_to_async
def token(tenant, role="viewer"):
    from apps.tenancy.services import token_create

    return token_create(tenant=tenant, name=f"console-{role}", role=role)[1]


async def test_anonymous_socket_is_refused(channel_layer_kind, socket_for):
    communicator = await socket_for()
    connected, code = await communicator.connect()
    assert (connected, code) == (False, UNAUTHENTICATED)


async def test_bad_token_is_refused(channel_layer_kind, socket_for):
    communicator = await socket_for(token="bwk_notatoken_xxxxxxxxxxxxxxxx")
    connected, code = await communicator.connect()
    assert (connected, code) == (False, UNAUTHENTICATED)


async def test_member_asking_for_another_tenant_is_refused(channel_layer_kind, socket_for):
    tenant_a, tenant_b = await tenants()
    user = await member(tenant_a)
    communicator = await socket_for(user=user, query=f"tenant={tenant_b.slug}")
    connected, code = await communicator.connect()
    assert (connected, code) == (False, FORBIDDEN)


async def test_token_asking_for_another_tenant_is_refused(channel_layer_kind, socket_for):
    tenant_a, tenant_b = await tenants()
    communicator = await socket_for(token=await token(tenant_a), query=f"tenant={tenant_b.slug}")
    connected, code = await communicator.connect()
    assert (connected, code) == (False, FORBIDDEN)


async def test_first_message_is_the_tenants_whole_state_and_nothing_of_another(channel_layer_kind, socket_for):
    tenant_a, tenant_b = await tenants()
    await sync_to_async(BreakerPolicyFactory)(tenant=tenant_a, name="payments")
    await sync_to_async(BreakerPolicyFactory)(tenant=tenant_b, name="b-secret")
    await sync_to_async(JobRunFactory)(tenant=tenant_b, type="jobs.ping")
    communicator = await socket_for(user=await member(tenant_a))
    connected, _ = await communicator.connect()
    assert connected
    first = (await receive_until(communicator, lambda m: "breakers" in m["data"]))[-1]
    assert first["type"] == "state"
    assert first["tenant"] == "tenant-a"
    assert set(first["data"]["breakers"]) == {"payments"}
    assert first["data"]["breakers"]["payments"]["state"] == "closed"
    assert first["data"].get("jobs", {}) == {}  # tenant-b's run is not there
    await close(communicator)


async def test_token_socket_watches_the_tokens_tenant(channel_layer_kind, socket_for):
    tenant_a, _ = await tenants()
    await sync_to_async(BreakerPolicyFactory)(tenant=tenant_a, name="search")
    communicator = await socket_for(token=await token(tenant_a))
    connected, _ = await communicator.connect()
    assert connected
    message = (await receive_until(communicator, lambda m: "breakers" in m["data"]))[-1]
    assert message["tenant"] == "tenant-a" and "search" in message["data"]["breakers"]
    await close(communicator)


async def test_breaker_forced_open_reaches_the_socket(channel_layer_kind, socket_for):
    from apps.console.services import breaker_action

    tenant_a, _ = await tenants()
    await sync_to_async(BreakerPolicyFactory)(tenant=tenant_a, name="payments")
    communicator = await socket_for(user=await member(tenant_a))
    await communicator.connect()
    await receive_until(communicator, lambda m: "breakers" in m["data"])
    await sync_to_async(breaker_action)(tenant=tenant_a, name="payments", action="force_open")
    await receive_until(communicator, lambda m: m["data"].get("breakers", {}).get("payments", {}).get("state")
                        == "forced_open")
    await close(communicator)


async def test_job_progress_reaches_the_socket(channel_layer_kind, socket_for):
    from apps.jobs.services import run_progress

    tenant_a, _ = await tenants()
    run = await sync_to_async(JobRunFactory)(tenant=tenant_a, type="jobs.ping", status="running")
    communicator = await socket_for(user=await member(tenant_a))
    await communicator.connect()
    await receive_until(communicator, lambda m: str(run.pk) in m["data"].get("jobs", {}))
    await sync_to_async(run_progress)(run=run, percent=60, message="more than half")
    messages = await receive_until(
        communicator, lambda m: m["data"].get("jobs", {}).get(str(run.pk), {}).get("progress") == 60)
    assert messages[-1]["data"]["jobs"][str(run.pk)]["message"] == "more than half"
    await close(communicator)


async def test_policy_figures_reach_the_socket_and_follow_new_counts(channel_layer_kind, socket_for):
    """What a rate-limit or cache policy's page shows live: its own figures, updated as the stats flush."""
    from django.utils import timezone

    from tests.caching.factories import CacheStatMinuteFactory
    from tests.ratelimit.factories import RateLimitStatFactory

    tenant_a, tenant_b = await tenants()
    minute = timezone.now().replace(second=0, microsecond=0)
    stat = await sync_to_async(RateLimitStatFactory)(tenant=tenant_a, minute=minute, allowed=50, denied=7)
    cache = await sync_to_async(CacheStatMinuteFactory)(tenant=tenant_a, minute=minute, hits=3, stale=0, misses=1)
    theirs = await sync_to_async(RateLimitStatFactory)(tenant=tenant_b, minute=minute, allowed=1, denied=1)
    rate_key, cache_key = f"ratelimit:{stat.policy_id}", f"caching:{cache.policy_id}"
    communicator = await socket_for(user=await member(tenant_a))
    await communicator.connect()
    messages = await receive_until(communicator, lambda m: rate_key in m["data"].get("policies", {}))
    policies = messages[-1]["data"]["policies"]
    assert policies[rate_key] == {"minutes": [[int(minute.timestamp()), 50, 7]]}
    assert policies[cache_key] == {"hit_ratio": 0.75, "lookups": 4}
    assert f"ratelimit:{theirs.policy_id}" not in policies
    stat.allowed, stat.denied = 80, 9  # the next flush of the minute's counters
    await sync_to_async(stat.save)()
    await receive_until(communicator, lambda m: m["data"].get("policies", {}).get(rate_key)
                        == {"minutes": [[int(minute.timestamp()), 80, 9]]})
    await close(communicator)


async def test_another_tenants_events_never_reach_the_socket(channel_layer_kind, socket_for):
    tenant_a, tenant_b = await tenants()
    communicator = await socket_for(user=await member(tenant_a))
    await communicator.connect()
    await sync_to_async(publish)(tenant_b.pk, "alert.fired", {"id": 1, "name": "b-secret"})
    await sync_to_async(publish)(tenant_a.pk, "alert.fired", {"id": 2, "name": "a-visible"})
    messages = await receive_until(communicator, lambda m: "alert.fired:2" in m["data"].get("events", {}))
    assert all("alert.fired:1" not in m["data"].get("events", {}) for m in messages)
    assert "b-secret" not in repr(messages)
    await close(communicator)


async def test_a_burst_published_in_one_loop_iteration_is_one_message_with_the_newest_value(channel_layer_kind):
    """100 progress reports of one run become one channel-layer message: no subscriber channel overflows."""
    from channels.layers import get_channel_layer

    from apps.core.live import console_group

    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(console_group(41), channel)
    for percent in range(1, 101):
        publish(41, "job.progress", {"id": 7, "progress": percent})
    publish(41, "job.progress", {"id": 8, "progress": 1})
    first = await asyncio.wait_for(layer.receive(channel), timeout=10)
    second = await asyncio.wait_for(layer.receive(channel), timeout=10)
    assert (first["data"], second["data"]) == ({"id": 7, "progress": 100}, {"id": 8, "progress": 1})
    await layer.group_discard(console_group(41), channel)


async def test_messages_are_at_least_the_send_interval_apart(channel_layer_kind, socket_for):
    tenant_a, _ = await tenants()
    communicator = await socket_for(user=await member(tenant_a))
    await communicator.connect()
    loop = asyncio.get_running_loop()
    arrivals = []
    for n in range(3):
        await sync_to_async(publish)(tenant_a.pk, "anomaly.opened", {"id": n})
        await receive_until(communicator, lambda m, n=n: f"anomaly.opened:{n}" in m["data"].get("events", {}))
        arrivals.append(loop.time())
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert all(gap >= 0.3 * 0.9 for gap in gaps)  # MIN_SEND_INTERVAL_S of these tests, less timer slack
    await close(communicator)


def test_offers_merge_into_one_pending_state_per_item():
    """What a slow socket has not sent yet holds the newest value of each item, however many came."""
    from apps.console.consumers import ConsoleConsumer

    consumer = ConsoleConsumer()
    consumer._pending = {}
    consumer._has_pending = asyncio.Event()
    for percent in range(1000):
        consumer.offer({"jobs": {"7": {"progress": percent}}, "breakers": {"api": {"state": "open"}}})
    consumer.offer({"breakers": {"api": None}})
    assert consumer._pending == {"jobs": {"7": {"progress": 999}}, "breakers": {"api": None}}


def test_diff_sends_changed_and_removed_items_only():
    from apps.console.hub import diff

    previous = {"breakers": {"a": {"state": "closed"}, "b": {"state": "closed"}}, "jobs": {"1": {"progress": 5}}}
    current = {"breakers": {"a": {"state": "open"}, "c": {"state": "closed"}}, "jobs": {"1": {"progress": 5}}}
    assert diff(previous, current) == {"breakers": {"a": {"state": "open"}, "b": None, "c": {"state": "closed"}}}


# --- a socket's principal is checked again while it is open (the interval is PRINCIPAL_RECHECK_S) --------

@sync_to_async
def token_with_row(tenant, role="viewer"):
    from apps.tenancy.services import token_create

    return token_create(tenant=tenant, name=f"console-{role}", role=role)


async def test_revoking_the_token_closes_its_open_socket_with_4401(channel_layer_kind, socket_for):
    from apps.tenancy.services import token_revoke

    tenant_a, _ = await tenants()
    row, raw = await token_with_row(tenant_a)
    communicator = await socket_for(token=raw)
    assert (await communicator.connect())[0]
    await receive_until(communicator, lambda m: "cards" in m["data"])
    await sync_to_async(token_revoke)(token=row)
    assert await closed_with(communicator) == UNAUTHENTICATED
    await close(communicator)


async def test_removing_the_membership_closes_the_users_socket_with_4403(channel_layer_kind, socket_for):
    from apps.tenancy.models import Membership
    from apps.tenancy.services import membership_delete

    tenant_a, tenant_b = await tenants()
    user = await member(tenant_a)
    await sync_to_async(MembershipFactory)(tenant=tenant_b, user=user)  # still a member elsewhere
    communicator = await socket_for(user=user, query="tenant=tenant-a")
    assert (await communicator.connect())[0]
    await receive_until(communicator, lambda m: "cards" in m["data"])
    membership = await sync_to_async(Membership.objects.get)(tenant=tenant_a, user=user)
    await sync_to_async(membership_delete)(membership=membership)
    assert await closed_with(communicator) == FORBIDDEN
    await close(communicator)


async def test_a_deactivated_user_or_ended_session_closes_the_socket_with_4401(channel_layer_kind, socket_for):
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.cached_db import SessionStore

    tenant_a, _ = await tenants()
    deactivated, logged_out = await member(tenant_a), await member(tenant_a)
    first = await socket_for(user=deactivated)
    second = await socket_for(user=logged_out)
    assert (await first.connect())[0] and (await second.connect())[0]
    await sync_to_async(get_user_model().objects.filter(pk=deactivated.pk).update)(is_active=False)
    cookie = dict(second.scope["headers"])[b"cookie"].decode()
    await sync_to_async(SessionStore(session_key=cookie.partition("=")[2]).delete)()  # what logout does
    assert await closed_with(first) == UNAUTHENTICATED
    assert await closed_with(second) == UNAUTHENTICATED
    await close(first)
    await close(second)


async def test_disabling_the_tenant_closes_its_sockets_with_4403(channel_layer_kind, socket_for):
    from apps.tenancy.models import Tenant

    tenant_a, tenant_b = await tenants()
    user = await member(tenant_a)
    await sync_to_async(MembershipFactory)(tenant=tenant_b, user=user)
    user_socket = await socket_for(user=user, query="tenant=tenant-a")
    token_socket = await socket_for(token=await token(tenant_a))
    assert (await user_socket.connect())[0] and (await token_socket.connect())[0]
    tenant = await sync_to_async(Tenant.objects.get)(pk=tenant_a.pk)
    tenant.is_active = False
    await sync_to_async(tenant.save)()
    assert await closed_with(user_socket) == FORBIDDEN
    assert await closed_with(token_socket) == FORBIDDEN
    await close(user_socket)
    await close(token_socket)


async def test_a_socket_whose_principal_is_still_valid_stays_open(channel_layer_kind, socket_for):
    from apps.console.conf import console_settings

    tenant_a, _ = await tenants()
    user_socket = await socket_for(user=await member(tenant_a))
    token_socket = await socket_for(token=await token(tenant_a))
    assert (await user_socket.connect())[0] and (await token_socket.connect())[0]
    await asyncio.sleep(4 * console_settings.PRINCIPAL_RECHECK_S)  # several re-checks
    await sync_to_async(publish)(tenant_a.pk, "anomaly.opened", {"id": 99})
    for communicator in (user_socket, token_socket):
        await receive_until(communicator, lambda m: "anomaly.opened:99" in m["data"].get("events", {}))
    await close(user_socket)
    await close(token_socket)


class _Socket:
    """A subscriber of a pulse with a principal, recording what the pulse tells it."""

    def __init__(self, principal) -> None:
        self.principal = principal
        self.refused_with = None

    def offer(self, sections) -> None:
        pass

    def refuse(self, code: int) -> None:
        self.refused_with = code


async def test_a_recheck_checks_each_principal_once_however_many_sockets_it_has(monkeypatch):
    from apps.console import auth
    from apps.console.auth import socket_principal
    from apps.console.hub import TenantPulse
    from apps.tenancy.services import token_revoke

    tenant_a, _ = await tenants()
    good, revoked = await token_with_row(tenant_a), await token_with_row(tenant_a, role="operator")
    principals = [await sync_to_async(socket_principal)({"headers": [(b"authorization", f"Bearer {raw}".encode())]})
                  for _row, raw in (good, revoked)]
    sockets = [_Socket(principals[0]) for _ in range(5)] + [_Socket(principals[1]) for _ in range(5)]
    pulse = TenantPulse(tenant_a.pk)
    pulse.subscribers.update(sockets)
    checked = []
    real = auth.socket_principal_recheck

    def counting(principal):
        checked.append(principal.display)
        return real(principal)

    monkeypatch.setattr(auth, "socket_principal_recheck", counting)
    await sync_to_async(token_revoke)(token=revoked[0])
    await pulse.recheck()
    assert sorted(checked) == sorted(p.display for p in principals)  # two checks for ten sockets
    assert [s.refused_with for s in sockets] == [None] * 5 + [UNAUTHENTICATED] * 5
    await database_sync_to_async(connections.close_all)()
