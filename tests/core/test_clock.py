"""The one clock protocol: the system clock and the fake one agree on it, and the fake moves only when told."""
from __future__ import annotations

import time

import pytest

from apps.core.clock import SYSTEM_CLOCK, Clock, FakeClock


def test_both_clocks_implement_the_protocol():
    assert isinstance(SYSTEM_CLOCK, Clock)
    assert isinstance(FakeClock(), Clock)


def test_system_clock_reads_the_real_clocks_in_seconds_and_microseconds():
    before_wall, before_mono = time.time(), time.monotonic()
    wall, mono, wall_us, mono_us = SYSTEM_CLOCK.time(), SYSTEM_CLOCK.monotonic(), SYSTEM_CLOCK.time_us(), \
        SYSTEM_CLOCK.monotonic_us()
    after_wall, after_mono = time.time(), time.monotonic()
    assert before_wall <= wall <= after_wall
    assert before_mono <= mono <= after_mono
    assert int(before_wall * 1e6) - 1 <= wall_us <= int(after_wall * 1e6) + 1
    assert int(before_mono * 1e6) - 1 <= mono_us <= int(after_mono * 1e6) + 1
    assert isinstance(wall_us, int) and isinstance(mono_us, int)


def test_fake_clock_stands_still_until_advanced_and_keeps_both_units_in_step():
    clock = FakeClock(time=1000.0, monotonic=50.0)
    assert (clock.time(), clock.monotonic()) == (1000.0, 50.0)
    assert (clock.time(), clock.monotonic()) == (1000.0, 50.0)
    clock.advance(0.000_25)
    assert clock.time_us() == 1_000_000_250 and clock.monotonic_us() == 50_000_250
    assert clock.time() == pytest.approx(1000.000_25) and clock.monotonic() == pytest.approx(50.000_25)


def test_fake_sleep_advances_instead_of_waiting():
    clock = FakeClock()
    start = clock.monotonic()
    clock.sleep(30)
    assert clock.monotonic() - start == pytest.approx(30)


def test_fake_clock_refuses_to_go_back():
    with pytest.raises(ValueError):
        FakeClock().advance(-1)


def test_cpu_time_moves_only_when_spent():
    clock = FakeClock()
    clock.sleep(5)  # waiting costs no CPU
    assert clock.thread_time() == 0
    clock.advance_cpu(0.015)
    assert clock.thread_time() == pytest.approx(0.015)
    with pytest.raises(ValueError):
        clock.advance_cpu(-1)


def test_the_system_cpu_clock_counts_this_threads_work():
    from apps.core.clock import SYSTEM_CLOCK

    start = SYSTEM_CLOCK.thread_time()
    sum(i * i for i in range(200_000))
    assert SYSTEM_CLOCK.thread_time() > start
