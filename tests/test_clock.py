import pytest

from qspi_gdb.sim.clock import Clock


def test_events_fire_in_time_order_with_now_at_due_time():
    clock = Clock()
    seen = []
    clock.call_at(2.0, lambda: seen.append(("b", clock.now)))
    clock.call_at(1.0, lambda: seen.append(("a", clock.now)))
    clock.advance(1.5)
    assert seen == [("a", 1.0)]
    clock.advance(1.0)
    assert seen == [("a", 1.0), ("b", 2.0)]
    assert clock.now == 2.5


def test_listeners_see_deltas_summing_to_elapsed_time():
    clock = Clock()
    deltas = []
    clock.on_advance(deltas.append)
    clock.call_at(0.25, lambda: None)
    clock.advance(1.0)
    assert deltas == [0.25, 0.75]


def test_cancelled_event_does_not_fire_and_events_can_schedule_events():
    clock = Clock()
    seen = []
    ev = clock.call_after(1.0, lambda: seen.append("cancelled"))
    ev.cancel()
    clock.call_after(0.5, lambda: clock.call_after(0.5, lambda: seen.append(clock.now)))
    clock.run_until_idle()
    assert seen == [1.0]


def test_no_backwards_and_no_nesting():
    clock = Clock()
    with pytest.raises(ValueError):
        clock.advance(-1)
    clock.call_after(0.1, lambda: clock.advance(1))
    with pytest.raises(RuntimeError):
        clock.advance(1)


def test_cancelled_events_do_not_pile_up_far_ahead():
    # A TIMER capture moves the channel's compare event to the next 32-bit wrap (~4295 s ahead
    # at 1 MHz) and cancels the previous one; behind an earlier live event (an RTC overflow
    # 512 s ahead) the cancelled ones never reach the head, so they must not stay queued.
    clock = Clock()
    fired = []
    clock.call_after(512.0, lambda: fired.append("overflow"))
    wrap = None
    for _ in range(100_000):
        if wrap is not None:
            wrap.cancel()
        wrap = clock.call_after(4294.967296, lambda: fired.append("wrap"))
        clock.call_after(0.0001, lambda: None)  # the heartbeat
        clock.advance(0.0001)
    assert len(clock._events) < 4 * 1024
    clock.run_until_idle()
    assert fired == ["overflow", "wrap"] and clock.now == wrap.when
