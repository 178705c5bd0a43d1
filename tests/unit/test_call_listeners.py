"""Live listeners of calls: each gets every event of its call (and no other call's), a slow
one loses only its own oldest events, and the end of the call reaches every one."""

import asyncio

from telephony.listeners import CallListeners


def drain(queue: asyncio.Queue) -> list:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


def test_events_reach_the_calls_listeners_only():
    listeners = CallListeners()
    first, second, other = listeners.listen("a"), listeners.listen("a"), listeners.listen("b")
    listeners.publish("a", {"type": "final", "text": "hello"})
    expected = [{"call_id": "a", "type": "final", "text": "hello"}]
    assert drain(first) == expected and drain(second) == expected and drain(other) == []
    listeners.unlisten("a", second)
    listeners.publish("a", {"type": "partial"})
    assert len(drain(first)) == 1 and drain(second) == []
    assert listeners.count("a") == 1


def test_a_listener_that_stops_reading_loses_its_oldest_events():
    listeners = CallListeners(queue_size=3)
    slow = listeners.listen("a")
    for n in range(5):
        listeners.publish("a", {"n": n})
    assert [event["n"] for event in drain(slow)] == [2, 3, 4]


def test_the_end_of_the_call_reaches_every_listener_even_a_full_one():
    listeners = CallListeners(queue_size=2)
    full, idle = listeners.listen("a"), listeners.listen("a")
    listeners.publish("a", {"n": 1})
    listeners.publish("a", {"n": 2})
    drain(idle)
    listeners.close("a")
    assert drain(full)[-1] is None and drain(idle) == [None]
    assert listeners.count("a") == 0
    listeners.publish("a", {"n": 3})  # nobody listens any more
    assert full.empty()
