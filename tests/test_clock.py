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
