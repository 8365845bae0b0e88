"""The console in a real browser: each demo role, live updates of breakers and jobs, an operator action,
a viewer without actions, and another tenant's events never shown."""
from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.slow

PINNED_CARDS = {"cpu", "memory", "response_time", "error_rate", "breakers", "jobs", "endpoints", "alerts", "audit"}


def _cards(browser) -> dict[str, str]:
    return {card.get_attribute("data-card"): card.get_attribute("data-state")
            for card in browser.find_elements(By.CSS_SELECTOR, "[data-card]")}


@pytest.mark.parametrize("username", ["acme-admin", "acme-operator", "acme-viewer"])
def test_each_demo_role_sees_the_live_console(browser, sign_in, username):
    sign_in(username)
    cards = _cards(browser)
    assert set(cards) >= PINNED_CARDS
    assert set(cards.values()) <= {"ok", "warning", "critical"}
    charts = {c.get_attribute("data-chart") for c in browser.find_elements(By.CSS_SELECTOR, "canvas[data-chart]")}
    assert charts == {"latency", "traffic", "system"}
    rows = {row.get_attribute("data-breaker"): row.get_attribute("data-state")
            for row in browser.find_elements(By.CSS_SELECTOR, "tr[data-breaker]")}
    assert set(rows) == {"api", "cache", "database", "payments"}
    actions = browser.find_elements(By.CSS_SELECTOR, "[data-action], form[action*='/admin/console/']")
    if username == "acme-viewer":
        assert actions == []
        assert "/admin/console/" not in browser.page_source  # not disabled: not rendered at all
    else:
        assert {a.get_attribute("data-action") for a in actions if a.tag_name == "button"} >= {"force_open", "reset"}


def test_operator_forces_a_breaker_open_from_the_board(browser, sign_in):
    sign_in("acme-operator")
    browser.find_element(By.CSS_SELECTOR, "tr[data-breaker='cache'] button[data-action='force_open']").click()
    wait_for(browser, "tr[data-breaker='cache'][data-state='forced_open']")
    assert "Force open: breaker cache." in browser.page_source
    browser.find_element(By.CSS_SELECTOR, "tr[data-breaker='cache'] button[data-action='reset']").click()
    wait_for(browser, "tr[data-breaker='cache'][data-state='closed']")


def test_dashboard_follows_a_breaker_and_a_job_and_never_shows_another_tenant(browser, sign_in, django_db_blocker):
    from apps.core import live
    from apps.core.context import Actor
    from apps.jobs.models import JobRun
    from apps.jobs.services import job_submit, run_progress
    from apps.resilience.models import BreakerPolicy
    from apps.resilience.services import breaker_force, policy_create
    from apps.tenancy.models import Tenant

    sign_in("acme-viewer")
    with django_db_blocker.unblock():
        acme, globex = Tenant.objects.get(slug="acme"), Tenant.objects.get(slug="globex")
        policy_create(model=BreakerPolicy, tenant=globex, data={"name": "globex-secret", "consecutive_failures": 3})
        breaker_force(policy=BreakerPolicy.objects.for_tenant(globex).get(name="globex-secret"), forced_state="forced_open")
        live.publish(globex.pk, "breaker.force_open", {"name": "globex-secret"})
        other = job_submit(job_type="console.demo_work", params={"steps": 3}, tenant=globex,
                           submitted_by=Actor.system("e2e"))
        breaker_force(policy=BreakerPolicy.objects.for_tenant(acme).get(name="payments"), forced_state="forced_open")
        run = job_submit(job_type="console.demo_work", params={"steps": 3}, tenant=acme, submitted_by=Actor.system("e2e"))
        JobRun.objects.filter(pk=run.pk).update(status="running", attempts=1)
        run_progress(run=JobRun.objects.get(pk=run.pk), percent=40, message="e2e")
    wait_for(browser, "tr[data-breaker='payments'][data-state='forced_open']")
    wait_for(browser, f"tr[data-job='{run.pk}'][data-status='running']")
    assert browser.find_element(By.CSS_SELECTOR, f"tr[data-job='{run.pk}'] progress").get_attribute("value") == "40"
    with django_db_blocker.unblock():
        run_progress(run=JobRun.objects.get(pk=run.pk), percent=90, message="e2e")
    wait_for(browser, f"tr[data-job='{run.pk}'] progress[value='90']")
    assert _cards(browser)["breakers"] == "critical"
    assert "globex-secret" not in browser.page_source
    assert not browser.find_elements(By.CSS_SELECTOR, f"tr[data-job='{other.pk}']")
    with django_db_blocker.unblock():
        from apps.resilience.services import breaker_reset

        breaker_reset(policy=BreakerPolicy.objects.for_tenant(acme).get(name="payments"))


def _text_of(browser, css: str, contains: str, timeout_s: float = 20) -> str:
    from selenium.webdriver.support.ui import WebDriverWait

    def found(driver):
        elements = driver.find_elements(By.CSS_SELECTOR, css)
        return elements[0].text if elements and contains in elements[0].text else False

    return WebDriverWait(browser, timeout_s).until(found)


def test_policy_pages_and_the_breaker_changelist_show_their_live_figures(browser, server, sign_in, django_db_blocker):
    from django.urls import reverse
    from django.utils import timezone

    from apps.caching import services as caching
    from apps.caching.models import CacheStatMinute
    from apps.ratelimit import services as ratelimit
    from apps.ratelimit.models import RateLimitStat
    from apps.resilience.models import BreakerPolicy
    from apps.resilience.services import breaker_force, breaker_reset
    from apps.tenancy.models import Tenant

    sign_in("acme-viewer")
    with django_db_blocker.unblock():
        acme = Tenant.objects.get(slug="acme")
        minute = timezone.now().replace(second=0, microsecond=0)
        # Policies that no request of the browser or the server matches: their figures are the test's alone.
        limit = ratelimit.policy_create(tenant=acme, data={
            "name": "e2e-figures", "match_kind": "named", "key_kind": "user", "algorithm": "gcra", "rate": 10,
            "period": "minute"})
        RateLimitStat.objects.create(tenant=acme, policy=limit, minute=minute, allowed=4321, denied=123)
        cache = caching.policy_create(tenant=acme, data={"name": "e2e-figures", "path_pattern": r"^/e2e-never/",
                                                          "ttl_s": 60})
        CacheStatMinute.objects.create(tenant=acme, policy=cache, minute=minute, hits=300, stale=30, misses=110)
        database = BreakerPolicy.objects.for_tenant(acme).get(name="database")

    browser.get(server + reverse("admin:bulwark_ratelimit_ratelimitpolicy_change", args=[limit.pk]))
    assert _text_of(browser, "#live-figures[data-live='ratelimit']", "4321 allowed") == (
        "Live, this minute: 4321 allowed, 123 denied per minute (1 recent minutes with traffic)")

    browser.get(server + reverse("admin:bulwark_caching_cachepolicy_change", args=[cache.pk]))
    assert _text_of(browser, "#live-figures[data-live='caching']", "440") == (
        "Live hit ratio, last 10 minutes: 75.0 % of 440 lookups")  # (300 hits + 30 stale) of 440

    browser.get(server + reverse("admin:bulwark_resilience_breakerpolicy_changelist"))
    wait_for(browser, "#result_list tr[data-breaker='database'][data-state='closed']")  # the stream is live
    with django_db_blocker.unblock():
        breaker_force(policy=database, forced_state="forced_open")
    try:
        row = wait_for(browser, "#result_list tr[data-breaker='database'][data-state='forced_open']")
        assert row.find_element(By.CSS_SELECTOR, "td.field-live_state").text == "forced_open"
    finally:
        with django_db_blocker.unblock():
            breaker_reset(policy=BreakerPolicy.objects.for_tenant(acme).get(name="database"))


def test_the_job_changelist_follows_a_runs_progress(browser, server, sign_in, django_db_blocker):
    from django.urls import reverse
    from selenium.webdriver.support.ui import WebDriverWait

    from apps.core.context import Actor
    from apps.jobs.models import JobRun
    from apps.jobs.services import job_submit, run_progress
    from apps.tenancy.models import Tenant

    sign_in("acme-viewer")
    with django_db_blocker.unblock():
        run = job_submit(job_type="console.demo_work", params={"steps": 3}, tenant=Tenant.objects.get(slug="acme"),
                         submitted_by=Actor.system("e2e"))
        JobRun.objects.filter(pk=run.pk).update(status="running", attempts=1)
        run_progress(run=JobRun.objects.get(pk=run.pk), percent=10, message="e2e")
    browser.get(server + reverse("admin:bulwark_jobs_jobrun_changelist"))
    row = browser.find_element(By.XPATH, f"//table[@id='result_list']//tr[.//a[contains(@href, '/{run.pk}/change/')]]")
    WebDriverWait(browser, 20).until(lambda _driver: row.get_attribute("data-status") == "running")  # the stream's
    with django_db_blocker.unblock():
        run_progress(run=JobRun.objects.get(pk=run.pk), percent=70, message="e2e")
    bar = row.find_element(By.CSS_SELECTOR, "td.field-progress_bar progress")
    WebDriverWait(browser, 20).until(lambda _driver: bar.get_attribute("value") == "70")
    assert row.find_element(By.CSS_SELECTOR, "td.field-progress_bar").text.strip() == "70%"
    assert row.find_element(By.CSS_SELECTOR, "td.field-status_badge").text == "running"
