"""The scorer's one-slot mailbox: newest input wins, drops are counted, no backlog."""

import threading
import time

from gan_anomaly_ros.ros.latest_mailbox import LatestMailbox


def test_newest_item_wins_and_drops_are_counted():
    box = LatestMailbox()
    assert box.put(1) is False
    assert box.put(2) is True
    assert box.put(3) is True
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
    for i in range(200):
        box.put(i)
        time.sleep(0.001)
    time.sleep(0.1)
    box.close()
    thread.join(timeout=2)
    assert not thread.is_alive()
    assert taken[-1] == 199                  # the last frame is always scored
    assert len(taken) + box.dropped == 200   # every frame is either scored or counted
    assert box.dropped > 100
