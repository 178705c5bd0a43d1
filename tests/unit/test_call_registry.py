"""The registry of calls in progress: by id, counted in the active-streams gauge while there."""

from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, Gauge

from telephony.registry import CallRegistry


def gauge_value(gauge: Gauge, source: str) -> float:
    return gauge.labels(protocol=f"call-{source}")._value.get()


def test_calls_are_added_found_counted_and_removed():
    gauge = Gauge("active", "active", ["protocol"], registry=CollectorRegistry())
    calls = CallRegistry(gauge)
    one, two = SimpleNamespace(id="one", source="sip"), SimpleNamespace(id="two", source="sip")
    calls.add(one)
    calls.add(two)
    assert "one" in calls and calls.get("two") is two and len(calls) == 2
    assert gauge_value(gauge, "sip") == 2
    with pytest.raises(ValueError, match="already registered"):
        calls.add(SimpleNamespace(id="one", source="sip"))
    for session in calls:  # a snapshot: ending calls while going through them is fine
        calls.remove(session.id)
    assert not calls and calls.get("one") is None and gauge_value(gauge, "sip") == 0
    assert calls.remove("one") is None  # twice is harmless
    assert gauge_value(gauge, "sip") == 0
