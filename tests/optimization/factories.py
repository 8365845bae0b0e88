import factory

from apps.optimization.models import Finding, LoadTest
from tests.factories import TenantFactory


class FindingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Finding

    tenant = factory.SubFactory(TenantFactory)
    kind = "uncached_hot_read"
    route = factory.Sequence(lambda n: f"demo/route-{n}/")
    method = "GET"
    recommendation = "Cache it."
    evidence = factory.LazyFunction(lambda: {"summary": "stable body"})
    fix = factory.LazyAttribute(lambda o: {"policy": "cache", "data": {
        "name": f"opt-{o.route.strip('/').replace('/', '-')}", "path_pattern": f"^/{o.route}$", "ttl_s": 60}})


class LoadTestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LoadTest

    tenant = factory.SubFactory(TenantFactory)
    target = "http://127.0.0.1:8000"
    steps = factory.LazyFunction(lambda: [{"step": 1, "concurrency": 2, "p95_ms": 10.0}])
