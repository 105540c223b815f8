"""The gate's decisions (token bucket, waiting room) on exact times, and its scenario section."""

from __future__ import annotations

import math

import pytest

from engine.gate import Gate, GateConfig, Ticket
from engine.scenario import Scenario, ScenarioError


def gate(**kw) -> Gate:
    return Gate(GateConfig(**kw))


def test_the_bucket_starts_full_and_refills_at_its_rate():
    g = gate(rate=10.0, burst=2)
    assert [g.arrive(0.0) for _ in range(3)] == [Ticket(True, 0.0), Ticket(True, 0.0), Ticket(False, 0.0)]
    assert g.arrive(0.1) == Ticket(True, 0.1)  # one token back after 1/rate
    assert g.arrive(0.15) == Ticket(False, 0.15)  # half a token is no token
    assert g.arrive(0.2) == Ticket(True, 0.2)
    assert g.arrive(5.0).admitted and g.arrive(5.0).admitted and not g.arrive(5.0).admitted  # capped at burst
    assert (g.stats.admitted, g.stats.refused, g.stats.queued) == (6, 3, 0)


def test_the_room_is_first_come_first_served_and_bounded():
    g = gate(rate=10.0, burst=1, room=2, max_wait=1.0)
    assert g.arrive(0.0) == Ticket(True, 0.0)
    first, second = g.arrive(0.0), g.arrive(0.0)
    assert first.admitted and first.at == pytest.approx(0.1) and first.position == 1
    assert second.admitted and second.at == pytest.approx(0.2) and second.position == 2
    assert g.arrive(0.0) == Ticket(False, 0.0)  # room full: refused at once
    # at 0.1 the first has left the room with its token: one place is free
    third = g.arrive(0.1)
    assert third.admitted and third.at == pytest.approx(0.3) and third.position == 2
    assert g.arrive(0.1) == Ticket(False, 0.1)
    assert g.stats.queued == 3 and g.stats.wait_total == pytest.approx(0.1 + 0.2 + 0.2)
    assert g.stats.wait_max == pytest.approx(0.2) and g.stats.position_max == 2


def test_a_buyer_whose_token_comes_after_max_wait_waits_that_long_and_takes_none():
    g = gate(rate=10.0, burst=1, room=10, max_wait=0.15)
    assert g.arrive(0.0).admitted
    assert g.arrive(0.0).at == pytest.approx(0.1)
    doomed = g.arrive(0.0)  # its token would come at 0.2
    assert not doomed.admitted and doomed.at == pytest.approx(0.15) and doomed.position == 2
    later = g.arrive(0.12)  # gets the token the doomed buyer did not take, after it left
    assert later.admitted and later.at == pytest.approx(0.2) and later.position == 2
    assert later.at > doomed.at
    s = g.stats
    assert (s.admitted, s.refused, s.queued) == (3, 1, 3)
    assert s.wait_total == pytest.approx(0.1 + 0.15 + 0.08) and s.wait_max == pytest.approx(0.15)
    assert s.figures(refused=1) == {"gate_refused": 1, "gate_queued": 3, "gate_wait_mean": pytest.approx(0.33 / 3),
                                    "gate_wait_max": pytest.approx(0.15), "gate_position_max": 2}


def test_admissions_never_exceed_burst_plus_rate_times_time():
    g = gate(rate=100.0, burst=5, room=20, max_wait=0.05)
    tickets = [g.arrive(i * 0.001) for i in range(2000)]  # 1000/s for 2 s, ten times the rate
    admitted = sorted(t.at for t in tickets if t.admitted)
    for k, at in enumerate(admitted):  # the k-th admission needs k + 1 - burst refilled tokens
        assert at >= (k + 1 - 5) / 100.0 - 1e-9
    assert len(admitted) <= 5 + 100 * (2.0 + 0.05)
    assert len(admitted) >= 100 * 2.0  # and the bucket is kept busy
    queued = [t for t in tickets if t.position]
    assert all(a.at <= b.at for a, b in zip(queued, queued[1:]) if a.admitted and b.admitted)  # FIFO


def test_the_gate_is_off_by_default_and_validates_its_keys():
    assert not Scenario().gate.on
    assert not Scenario().with_overrides(["gate.rate=inf"]).gate.on
    on = Scenario().with_overrides(["gate.rate=50", "gate.burst=3", "gate.room=7", "gate.max_wait=0.2"]).gate
    assert on.on and (on.rate, on.burst, on.room, on.max_wait) == (50.0, 3, 7, 0.2)
    for bad, message in (("gate.rate=-1", "gate.rate must be >= 0"), ("gate.burst=0", "gate.burst must be >= 1"),
                         ("gate.room=-2", "gate.room must be >= 0"), ("gate.max_wait=-0.1", "gate.max_wait must be >= 0"),
                         ("gate.size=3", "unknown key 'gate.size'")):
        with pytest.raises(ScenarioError, match=message):
            Scenario().with_overrides([bad])
    with pytest.raises(ValueError):
        Gate(GateConfig(rate=math.inf))
