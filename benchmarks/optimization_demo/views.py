"""The demo's endpoints: one planted problem of each route-level kind, each beside a healthy twin; and the
endpoints the policy kinds are planted on (cache, rate limit and breaker policies set up by the benchmark)."""
from __future__ import annotations

import itertools
import random

import httpx
from django.core.cache import cache
from django.db.models import Avg, Count, Max, Sum
from django.http import JsonResponse

from apps.resilience.errors import BreakerOpen
from apps.resilience.httpx import BreakerTransport
from benchmarks.optimization_demo.models import Customer, Order, Product, Setting

# Set by whoever runs the demo (tests, the benchmark): the local upstream and a port nobody listens on.
UPSTREAM = "http://127.0.0.1:9"
DEAD_UPSTREAM = "http://127.0.0.1:9"
# The failing dependency, when it runs on a host of its own (the benchmark: each dependency's fix is then its
# own breaker policy, named after its host); else UPSTREAM.
FAILING_UPSTREAM: str | None = None
_counter = itertools.count()
_rng = random.Random(3)


def _orders(rows):
    return [{"id": o.pk, "code": o.code, "customer": o.customer.name} for o in rows]


# n_plus_one / twin
def orders_n_plus_one(request):
    return JsonResponse({"orders": _orders(Order.objects.order_by("created")[:30])})


def orders_joined(request):
    return JsonResponse({"orders": _orders(Order.objects.select_related("customer").order_by("created")[:30])})


# repeated_query / twin
def settings_repeated(request):
    values = [Setting.objects.get(key="currency").value for _ in range(5)]
    return JsonResponse({"currency": values[0], "checks": len(values)})


def settings_once(request):
    value = Setting.objects.get(key="currency").value
    return JsonResponse({"currency": value, "checks": 5})


# missing_index / twin (the same lookup on an indexed column)
def order_by_reference(request):
    ref = f"R{_rng.randrange(30_000):08d}"
    return JsonResponse({"found": Order.objects.filter(reference=ref).count()})


def order_by_code(request):
    code = f"C{_rng.randrange(30_000):08d}"
    return JsonResponse({"found": Order.objects.filter(code=code).count()})


# unindexable_search / twin (the same search on a small table)
def customer_search(request):
    term = request.GET.get("q", "lyon 12")
    return JsonResponse({"hits": list(Customer.objects.filter(name__icontains=term).values_list("pk", flat=True)[:20])})


def product_search(request):
    term = request.GET.get("q", "duct 1")
    ids = list(Product.objects.filter(pk__lte=50, name__icontains=term).values_list("pk", flat=True)[:20])
    return JsonResponse({"hits": ids})


# unindexed_sort / twin (sorted on an indexed column)
def top_orders(request):
    return JsonResponse({"top": list(Order.objects.order_by("-amount").values_list("pk", flat=True)[:10])})


def latest_orders(request):
    return JsonResponse({"latest": list(Order.objects.order_by("-created").values_list("pk", flat=True)[:10])})


# unbounded_result / twin (paginated)
def products_all(request):
    return JsonResponse({"products": list(Product.objects.values("id", "name", "price"))})


def products_page(request):
    page = max(int(request.GET.get("page", "1")), 1)
    rows = list(Product.objects.order_by("pk").values("id", "name", "price")[(page - 1) * 50:page * 50])
    return JsonResponse({"products": rows, "page": page})


# uncached_hot_read / twin (caches by its own means)
def _report() -> dict:
    totals = Order.objects.aggregate(n=Count("pk"), total=Sum("amount"), avg=Avg("amount"), top=Max("amount"))
    by_city = list(Customer.objects.values("city").annotate(n=Count("pk")).order_by("city"))
    revenue = list(Order.objects.values("customer__city").annotate(total=Sum("amount")).order_by("customer__city"))
    return {"totals": totals, "cities": by_city, "revenue": revenue}


def report(request):
    return JsonResponse(_report())


def report_self_cached(request):
    body = cache.get("demo-report")
    if body is None:
        body = _report()
        cache.set("demo-report", body, 300)
    return JsonResponse(body)


# One client each, made once: building an httpx client per request costs tens of ms of CPU (its SSL context).
# Through Bulwark's transport (a breaker per host), but with no timeout: a breaker policy can add one.
_no_timeout = httpx.Client(timeout=None, transport=BreakerTransport())
_with_timeout = httpx.Client(timeout=2.0)
_short_timeout = httpx.Client(timeout=0.5)


# dependency_without_timeout / twin
def upstream_no_timeout(request):
    try:
        return JsonResponse({"rate": _no_timeout.get(f"{UPSTREAM}/ok").json()["rate"]})
    except BreakerOpen:
        return JsonResponse({"error": "upstream unavailable"}, status=503)


def upstream_with_timeout(request):
    return JsonResponse({"rate": _with_timeout.get(f"{UPSTREAM}/ok").json()["rate"]})


# dependency_failing_without_breaker / twin (timeout and a fallback keep the response healthy)
def upstream_failing(request):
    response = _with_timeout.get(f"{FAILING_UPSTREAM or UPSTREAM}/fail")
    return JsonResponse({"upstream": response.status_code}, status=502 if response.status_code >= 500 else 200)


def upstream_fallback(request):
    try:
        rate = _short_timeout.get(f"{DEAD_UPSTREAM}/ok").json()["rate"]
    except httpx.HTTPError:
        rate = 1.0  # the documented fallback
    return JsonResponse({"rate": rate})


# cpu_hot_path / twin
def _crunch(n: int) -> int:
    total = 0
    for i in range(n):
        total = (total * 31 + i * i) % 1_000_003
    return total


def cpu_heavy(request):
    return JsonResponse({"value": _crunch(800_000), "request": next(_counter)})


def cpu_light(request):
    return JsonResponse({"value": _crunch(2_000), "request": next(_counter)})


# Endpoints under a policy (the benchmark creates the policies; see urls.POLICY_PLANTED / POLICY_HEALTHY).
def _catalog_body(key: str) -> dict:
    totals = Order.objects.filter(created__lt=3_000).aggregate(n=Count("pk"), total=Sum("amount"))
    return {"key": key, "totals": totals, "products": Product.objects.filter(pk__lte=50).count()}


# cache_poor_hit_ratio (a cache policy whose entries expire before they are reused) / twin (one that hits)
def catalog(request):
    return JsonResponse(_catalog_body(request.GET.get("k", "")))


def catalog_hot(request):
    return JsonResponse(_catalog_body("hot"))


# ratelimit_shadow_impact / ratelimit_never_triggers and their twins: cheap endpoints, only the policy differs
def quote(request):
    return JsonResponse({"quote": 42})


def quote_lenient(request):
    return JsonResponse({"quote": 42})


def ping_unlimited(request):
    return JsonResponse({"pong": True})


def ping_limited(request):
    return JsonResponse({"pong": True})


# breaker_flapping (a breaker on a dependency that fails in runs) / twin (a breaker on a healthy one)
_flaky = httpx.Client(timeout=2.0, transport=BreakerTransport(policies={"127.0.0.1": "bench-flaky"}))
_steady = httpx.Client(timeout=2.0, transport=BreakerTransport(policies={"127.0.0.1": "bench-steady"}))


def upstream_flaky(request):
    try:
        response = _flaky.get(f"{UPSTREAM}/flaky")
        rate = response.json().get("rate", 1.0) if response.status_code < 500 else 1.0
    except BreakerOpen:
        rate = 1.0  # the documented fallback
    return JsonResponse({"rate": rate})


def upstream_steady(request):
    try:
        rate = _steady.get(f"{UPSTREAM}/ok").json()["rate"]
    except BreakerOpen:
        rate = 1.0
    return JsonResponse({"rate": rate})
