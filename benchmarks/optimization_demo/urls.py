from django.urls import include, path

from benchmarks.optimization_demo import views as v

PLANTED = {
    "n_plus_one": "demo/orders/n-plus-one/",
    "repeated_query": "demo/settings/repeated/",
    "missing_index": "demo/orders/by-reference/",
    "unindexable_search": "demo/customers/search/",
    "unindexed_sort": "demo/orders/top/",
    "unbounded_result": "demo/products/all/",
    "uncached_hot_read": "demo/report/",
    "dependency_without_timeout": "demo/upstream/no-timeout/",
    "dependency_failing_without_breaker": "demo/upstream/failing/",
    "cpu_hot_path": "demo/cpu/heavy/",
}
HEALTHY = ["demo/orders/joined/", "demo/settings/once/", "demo/orders/by-code/", "demo/products/search/",
           "demo/orders/latest/", "demo/products/page/", "demo/report/cached/", "demo/upstream/with-timeout/",
           "demo/upstream/fallback/", "demo/cpu/light/"]

# Kinds read from the policies' own statistics: the benchmark creates the policies (POLICIES) and drives these.
POLICY_PLANTED = {
    "cache_poor_hit_ratio": "demo/catalog/",
    "ratelimit_shadow_impact": "demo/quote/",
    "ratelimit_never_triggers": "demo/ping/unlimited/",
    "breaker_flapping": "-",
}
POLICY_HEALTHY = ["demo/catalog/hot/", "demo/quote/lenient/", "demo/ping/limited/", "demo/upstream/steady/"]
# Where the breaker finding's traffic comes from (its finding's route is `-`, the breaker named in the evidence).
FLAPPING_ROUTE = "demo/upstream/flaky/"

demo = [
    path("orders/n-plus-one/", v.orders_n_plus_one, name="orders-n-plus-one"),
    path("orders/joined/", v.orders_joined, name="orders-joined"),
    path("settings/repeated/", v.settings_repeated, name="settings-repeated"),
    path("settings/once/", v.settings_once, name="settings-once"),
    path("orders/by-reference/", v.order_by_reference, name="order-by-reference"),
    path("orders/by-code/", v.order_by_code, name="order-by-code"),
    path("customers/search/", v.customer_search, name="customer-search"),
    path("products/search/", v.product_search, name="product-search"),
    path("orders/top/", v.top_orders, name="orders-top"),
    path("orders/latest/", v.latest_orders, name="orders-latest"),
    path("products/all/", v.products_all, name="products-all"),
    path("products/page/", v.products_page, name="products-page"),
    path("report/", v.report, name="report"),
    path("report/cached/", v.report_self_cached, name="report-cached"),
    path("upstream/no-timeout/", v.upstream_no_timeout, name="upstream-no-timeout"),
    path("upstream/with-timeout/", v.upstream_with_timeout, name="upstream-with-timeout"),
    path("upstream/failing/", v.upstream_failing, name="upstream-failing"),
    path("upstream/fallback/", v.upstream_fallback, name="upstream-fallback"),
    path("cpu/heavy/", v.cpu_heavy, name="cpu-heavy"),
    path("cpu/light/", v.cpu_light, name="cpu-light"),
    path("catalog/", v.catalog, name="catalog"),
    path("catalog/hot/", v.catalog_hot, name="catalog-hot"),
    path("quote/", v.quote, name="quote"),
    path("quote/lenient/", v.quote_lenient, name="quote-lenient"),
    path("ping/unlimited/", v.ping_unlimited, name="ping-unlimited"),
    path("ping/limited/", v.ping_limited, name="ping-limited"),
    path("upstream/flaky/", v.upstream_flaky, name="upstream-flaky"),
    path("upstream/steady/", v.upstream_steady, name="upstream-steady"),
]

urlpatterns = [
    path("demo/", include(demo)),
    path("", include("config.urls")),
]
