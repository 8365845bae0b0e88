"""Browser tests: Debian's Chromium driven by Selenium through Debian's chromedriver (nothing is downloaded),
against a real uvicorn process on the test database, seeded once per module with `seed_demo`."""
from __future__ import annotations

import os
import shutil

import pytest
from django.conf import settings
from django.core.management import call_command

from benchmarks.ratelimit_harness import port, servers

CHROMIUM = os.environ.get("BULWARK_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("BULWARK_CHROMEDRIVER", "/usr/bin/chromedriver")
E2E_PORT_OFFSET = 71


def _database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("browser tests need PostgreSQL: the server process must share the test database")
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    """The demo's tenants, users, policies and history, committed; everything flushed after the module."""
    with django_db_blocker.unblock():
        call_command("seed_demo", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    yield
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)


@pytest.fixture(autouse=True)
def _no_breaker_flusher_in_the_test_process():
    """Breakers touched here by services must not start resilience's flusher thread: it would write to the
    database outside the test's access (the server process has its own)."""
    from apps.resilience.runtime import registry

    saved = registry.background
    registry.stop()
    registry.background = False
    yield
    registry.background = saved


@pytest.fixture(scope="module")
def server(demo):
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail(f"browser tests need {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)")
    if not os.environ.get("REDIS_URL"):
        pytest.skip("browser tests need Redis: the test process reaches the server's consoles over channels-redis")
    env = {"DATABASE_URL": _database_url(), "DEBUG": "1", "BULWARK_LOGIN_LIMIT": "0"}
    with servers([port(E2E_PORT_OFFSET)], extra_env=[env]) as (url,):
        yield url


@pytest.fixture(scope="module")
def browser(server):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1400"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def sign_in(browser, server):
    from selenium.webdriver.common.by import By

    def sign_in_as(username: str) -> None:
        browser.delete_all_cookies()
        browser.get(f"{server}/admin/login/")
        browser.find_element(By.NAME, "username").send_keys(username)
        browser.find_element(By.NAME, "password").send_keys(f"{username}-demo")
        browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        wait_for(browser, "#console-connection[data-connection='live']")

    return sign_in_as


def wait_for(browser, css: str, timeout_s: float = 20):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout_s).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))
