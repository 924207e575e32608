"""Tests for gan_anomaly_ros.ros.time_sync: the fallback synchroniser and the rclpy path."""

import itertools
import os
import random
import threading
import time
from types import SimpleNamespace

import pytest

from gan_anomaly_ros.ros.time_sync import (
    ApproximateTimeSynchronizerFallback,
    message_filters_available,
    subscribe_synchronized,
)

try:
    import rclpy
    HAVE_RCLPY = True
except Exception:  # ImportError, or OSError for a missing shared library
    HAVE_RCLPY = False

MS = 1_000_000  # nanoseconds


def fake(name, stamp_ns):
    stamp = SimpleNamespace(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)
    return SimpleNamespace(name=name, header=SimpleNamespace(stamp=stamp))


def run(events, n_inputs=3, queue_size=10, slop=0.05):
    """Feed [(index, name, stamp_ns)] to a fallback; return the emitted sets as name tuples."""
    sync = ApproximateTimeSynchronizerFallback(n_inputs, queue_size, slop)
    out = []
    sync.register_callback(lambda *msgs: out.append(tuple(m.name for m in msgs)))
    for index, name, stamp in events:
        sync.add(fake(name, stamp), index)
    return out, sync


def camera_stream(frames, period_ms=33, jitter_ms=(0, 4, 9)):
    """Colour/depth/info per frame, info and depth stamps offset by a few ms."""
    events = []
    for k in range(frames):
        base = 1_000 * 1_000 * MS + k * period_ms * MS
        for index, kind in enumerate(("color", "depth", "info")):
            events.append((index, f"{kind}{k}", base + jitter_ms[index] * MS))
    return events


def test_matching_triples_emitted_once_in_order():
    out, sync = run(camera_stream(20))
    assert out == [(f"color{k}", f"depth{k}", f"info{k}") for k in range(20)]
    assert sync.queued() == [0, 0, 0]


def test_register_callback_extra_args_and_two_callbacks():
    sync = ApproximateTimeSynchronizerFallback(2, 5, 0.01)
    got = []
    sync.register_callback(lambda a, b, tag: got.append((a.name, b.name, tag)), "x")
    sync.registerCallback(lambda a, b: got.append((a.name, b.name)))
    sync.add(fake("a", 10 * MS), 0)
    sync.add(fake("b", 12 * MS), 1)
    assert got == [("a", "b", "x"), ("a", "b")]


def test_out_of_slop_not_emitted():
    events = [(0, "c", 1000 * MS), (1, "d", 1030 * MS), (2, "i", 1060 * MS)]
    out, sync = run(events, slop=0.05)  # c..i spread 60 ms > 50 ms
    assert out == []
    assert sync.queued() == [1, 1, 1]
    # a partner exactly slop away passes the candidate test but the spread must be < slop
    out, _ = run([(0, "c", 1000 * MS), (1, "d", 1050 * MS)], n_inputs=2, slop=0.05)
    assert out == []
    out, _ = run([(0, "c", 1000 * MS), (1, "d", 1049 * MS)], n_inputs=2, slop=0.05)
    assert out == [("c", "d")]


def test_queue_bound_drops_oldest_stamp():
    events = [(0, "c1", 1000 * MS), (0, "c3", 3000 * MS), (0, "c2", 2000 * MS)]
    out, sync = run(events, n_inputs=2, queue_size=2)
    assert sync.queued() == [2, 0]
    sync.add(fake("d1", 1000 * MS), 1)  # c1 (oldest stamp, not oldest arrival) was dropped
    assert out == []
    sync.add(fake("d2", 2000 * MS), 1)
    assert out == [("c2", "d2")]
    assert sync.queued() == [1, 1]


def test_message_older_than_full_queue_is_dropped_at_once():
    out, sync = run([(0, "c5", 5000 * MS), (1, "d5", 5000 * MS), (0, "c6", 6000 * MS),
                     (0, "c1", 1000 * MS), (1, "d1", 1000 * MS)], n_inputs=2, queue_size=1)
    assert out == [("c5", "d5")]
    assert sync.queued() == [1, 1]


def test_same_stamp_replaces_queued_message():
    out, _ = run([(0, "old", 1000 * MS), (0, "new", 1000 * MS), (1, "d", 1000 * MS)],
                 n_inputs=2)
    assert out == [("new", "d")]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_every_arrival_order_of_one_triple(order):
    triple = [(0, "c", 5000 * MS), (1, "d", 5004 * MS), (2, "i", 5009 * MS)]
    out, sync = run([triple[i] for i in order])
    assert out == [("c", "d", "i")]
    assert sync.queued() == [0, 0, 0]


def test_interleaved_streams_with_lag():
    # depth lags two frames behind colour, info arrives last: still one set per frame
    events = camera_stream(10)
    by_index = {i: [e for e in events if e[0] == i] for i in range(3)}
    interleaved = []
    for k in range(12):
        if k < 10:
            interleaved.append(by_index[0][k])
        if 2 <= k < 12:
            interleaved.append(by_index[1][k - 2])
    interleaved += by_index[2]
    out, _ = run(interleaved)
    assert out == [(f"color{k}", f"depth{k}", f"info{k}") for k in range(10)]


def test_nearest_candidate_first_fast_finish():
    # two colour frames near the depth stamp: the nearer one is used, the other stays
    out, sync = run([(0, "far", 1000 * MS), (0, "near", 1030 * MS), (1, "d", 1035 * MS)],
                    n_inputs=2)
    assert out == [("near", "d")]
    assert sync.queued() == [1, 0]


def test_thread_safety_concurrent_inputs():
    frames = 300
    sync = ApproximateTimeSynchronizerFallback(3, frames, 0.05)
    out = []
    sync.register_callback(lambda *msgs: out.append(tuple(m.name for m in msgs)))
    start = threading.Barrier(3)

    def feed(index):
        start.wait()
        for k in range(frames):
            sync.add(fake(f"{index}:{k}", (k + 1) * 1000 * MS), index)

    threads = [threading.Thread(target=feed, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(out, key=lambda s: int(s[0].split(":")[1])) == [
        (f"0:{k}", f"1:{k}", f"2:{k}") for k in range(frames)]


def test_invalid_arguments():
    with pytest.raises(ValueError):
        ApproximateTimeSynchronizerFallback(0, 10, 0.05)
    with pytest.raises(ValueError):
        ApproximateTimeSynchronizerFallback(2, 0, 0.05)


def random_events(seed, n=400, n_inputs=3):
    rng = random.Random(seed)
    events = []
    for k in range(n):
        index = rng.randrange(n_inputs)
        # roughly in time order, out of order by up to 40 ms, on a 2 ms grid (equal
        # distances and equal stamps happen: tie-breaking and replacement are compared too)
        stamp = 1000 * 1000 * MS + (k * 10 + rng.randrange(-20, 20) * 2) * MS
        events.append((index, f"m{k}", stamp))
    return events


@pytest.mark.skipif(not message_filters_available(),
                    reason="message_filters not importable (not on PyPI; present on a ROS 2 "
                           "install)")
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("queue_size,slop", [(3, 0.02), (10, 0.05), (5, 0.3)])
def test_same_output_as_message_filters(seed, queue_size, slop):
    import message_filters
    from std_msgs.msg import Header

    events = random_events(seed) + camera_stream(30, jitter_ms=(0, 7, 13))
    inputs = [message_filters.SimpleFilter() for _ in range(3)]
    reference = message_filters.ApproximateTimeSynchronizer(inputs, queue_size, slop)
    expected = []
    reference.registerCallback(lambda *msgs: expected.append(tuple(m.name for m in msgs)))
    for index, name, stamp in events:
        msg = SimpleNamespace(name=name, header=Header())
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        inputs[index].signalMessage(msg)
    ours, _ = run(events, queue_size=queue_size, slop=slop)
    assert len(expected) > 5
    assert ours == expected


# --- the real node path ------------------------------------------------------------------

def implementations():
    impls = ["fallback"]
    if message_filters_available():
        impls.append("message_filters")
    return impls


@pytest.mark.skipif(not HAVE_RCLPY, reason="rclpy not importable")
@pytest.mark.parametrize("implementation", implementations())
def test_subscribe_synchronized_receives_triple(monkeypatch, implementation):
    from builtin_interfaces.msg import Time
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import CameraInfo, Image

    if "ROS_DOMAIN_ID" not in os.environ:  # conftest normally picks a per-session domain
        monkeypatch.setenv("ROS_DOMAIN_ID", "57")
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("time_sync_test", context=context)
        received = []
        handle = subscribe_synchronized(
            node, [(Image, "ts_test/color"), (Image, "ts_test/depth"),
                   (CameraInfo, "ts_test/info")],
            lambda *msgs: received.append(msgs), queue_size=10, slop=0.05,
            use_message_filters=(implementation == "message_filters"))
        assert handle.implementation == implementation
        # default (reliable) publishers: the best-effort subscription must still match
        pubs = [node.create_publisher(t, name, 10) for t, name in
                [(Image, "ts_test/color"), (Image, "ts_test/depth"),
                 (CameraInfo, "ts_test/info")]]
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + 15.0
        frame = 0
        while not received and time.monotonic() < deadline:
            frame += 1
            stamp = Time(sec=1000 + frame)  # frames 1 s apart: a set never mixes frames
            msgs = [Image(encoding="rgb8"), Image(encoding="16UC1"), CameraInfo()]
            for msg, pub in zip(msgs, pubs):
                msg.header.stamp = stamp
                msg.header.frame_id = f"frame{frame}"
                pub.publish(msg)
            executor.spin_once(timeout_sec=0.05)
            executor.spin_once(timeout_sec=0.05)
        assert received, "no synchronised triple within 15 s"
        color, depth, info = received[0]
        assert (color.encoding, depth.encoding) == ("rgb8", "16UC1")
        assert isinstance(info, CameraInfo)
        assert color.header.frame_id == depth.header.frame_id == info.header.frame_id
        handle.destroy()
        assert handle.subscriptions == []
        executor.shutdown()
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
