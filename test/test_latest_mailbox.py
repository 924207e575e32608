"""The nodes' mailboxes: newest input wins, drops are counted and handed back (their sender
owes them a SKIPPED verdict), no backlog."""

import threading
import time

from gan_anomaly_ros.ros.latest_mailbox import LatestMailbox


def test_newest_item_wins_and_drops_are_counted():
    box = LatestMailbox()
    assert box.put(1) is None
    assert box.put(2) == 1                   # the dropped item comes back to its sender
    assert box.put(3) == 2
    assert box.take(timeout=0.1) == 3
    assert box.dropped == 2
    assert box.take(timeout=0.05) is None


def test_slow_consumer_never_builds_a_backlog():
    box = LatestMailbox()
    taken = []

    def consumer():
        while (item := box.take()) is not None:
            taken.append(item)
            time.sleep(0.02)  # a model slower than the camera

    thread = threading.Thread(target=consumer)
    thread.start()
    handed_back = []
    for i in range(200):
        dropped = box.put(i)
        if dropped is not None:
            handed_back.append(dropped)
        time.sleep(0.001)
    time.sleep(0.1)
    box.close()
    thread.join(timeout=2)
    assert not thread.is_alive()
    assert taken[-1] == 199                  # the last frame is always scored
    assert len(taken) + box.dropped == 200   # every frame is either scored or counted
    assert box.dropped > 100
    assert sorted(taken + handed_back) == list(range(200))   # each item exactly once


def test_a_larger_mailbox_keeps_a_burst_in_order_and_drops_the_oldest_beyond():
    box = LatestMailbox(capacity=3)
    assert [box.put(i) for i in range(3)] == [None, None, None]   # a burst of three: kept
    assert [box.take(timeout=0.1) for _ in range(3)] == [0, 1, 2]
    assert box.dropped == 0
    assert [box.put(i) for i in range(10, 15)] == [None, None, None, 10, 11]
    assert [box.take(timeout=0.1) for _ in range(3)] == [12, 13, 14]
    assert box.dropped == 2
    box.close()
    assert box.take() is None
    try:
        LatestMailbox(capacity=0)
    except ValueError as exc:
        assert "capacity" in str(exc)
    else:
        raise AssertionError("capacity 0 was accepted")
