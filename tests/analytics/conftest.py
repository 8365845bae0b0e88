"""Analytics fixtures: the series-source registry is restored after each test (tests register fakes)."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _series_sources_restored():
    from apps.analytics import sources

    saved = dict(sources._sources)
    yield
    sources._sources.clear()
    sources._sources.update(saved)
