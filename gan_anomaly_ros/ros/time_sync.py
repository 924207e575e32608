"""Colour + depth + camera_info synchronisation.

:func:`subscribe_synchronized` uses ``message_filters.ApproximateTimeSynchronizer`` where
``message_filters`` is importable (every real ROS 2 install has it) and otherwise falls back to
:class:`ApproximateTimeSynchronizerFallback`, a small pure-Python reimplementation with the same
matching semantics (message_filters is not on PyPI, so venvs built from the ROS wheels lack it).

The semantics both follow (those of message_filters' Python ApproximateTimeSynchronizer):

* each input has a queue of messages keyed by header stamp (nanoseconds; a message with the
  same stamp replaces the queued one); when a queue holds more than ``queue_size`` messages
  the one with the oldest stamp is dropped;
* when a message arrives, only sets containing it are searched: from every other queue the
  stamps within ``slop`` of the new stamp (inclusive) are taken, each list ordered by distance
  to the new stamp (ties in arrival order); the combinations are tried in that order
  (``itertools.product``) and the first whose spread ``max - min`` is strictly below ``slop``
  is emitted ("fast finish"), its messages removed from the queues; nothing else is dropped.
"""

import itertools
import threading

__all__ = [
    "ApproximateTimeSynchronizerFallback",
    "SynchronizedSubscription",
    "message_filters_available",
    "sensor_qos",
    "subscribe_synchronized",
]


def message_filters_available():
    """True when the real ``message_filters`` package can be imported."""
    try:
        import message_filters  # noqa: F401
    except Exception:  # ImportError, or rclpy failing underneath it
        return False
    return True


def _stamp_ns(msg):
    stamp = msg.header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class ApproximateTimeSynchronizerFallback:
    """Fallback for ``message_filters.ApproximateTimeSynchronizer`` when it is not importable.

    Pure Python and ROS-free: a message only needs ``header.stamp.sec`` / ``.nanosec``.
    Feed messages with ``add(msg, index)`` (``index`` = input number) and receive matched sets
    through callbacks registered with ``register_callback(cb, *args)``, called as
    ``cb(msg_0, ..., msg_n-1, *args)``. Thread-safe: a lock guards the queues, and callbacks
    run while it is held (as in message_filters), so a callback must not call ``add``.
    """

    def __init__(self, n_inputs, queue_size, slop):
        if n_inputs < 1 or queue_size < 1 or slop < 0:
            raise ValueError("need n_inputs >= 1, queue_size >= 1 and slop >= 0")
        self.queue_size = int(queue_size)
        self.slop_ns = int(slop * 1e9)  # truncated like rclpy's Duration(seconds=slop)
        self._queues = [{} for _ in range(n_inputs)]  # stamp ns -> msg, in arrival order
        self._callbacks = []
        self._lock = threading.Lock()

    def register_callback(self, cb, *args):
        """Call ``cb(*msgs, *args)`` for every synchronised set; returns a connection id."""
        self._callbacks.append((cb, args))
        return len(self._callbacks) - 1

    registerCallback = register_callback  # message_filters spelling

    def add(self, msg, index):
        """Queue ``msg`` as input ``index`` and emit the first set it completes, if any."""
        stamp = _stamp_ns(msg)
        with self._lock:
            queue = self._queues[index]
            queue[stamp] = msg
            while len(queue) > self.queue_size:
                del queue[min(queue)]
            match = self._first_match(index, stamp)
            if match is None:
                return
            msgs = tuple(q.pop(t) for q, t in zip(self._queues, match))
            for cb, args in self._callbacks:
                cb(*msgs, *args)

    def _first_match(self, index, stamp):
        if stamp not in self._queues[index]:  # dropped at once: older than a full queue
            return None
        candidates = []
        for i, queue in enumerate(self._queues):
            if i == index:
                candidates.append([stamp])
                continue
            near = [t for t in queue if abs(t - stamp) <= self.slop_ns]
            if not near:
                return None
            near.sort(key=lambda t: abs(t - stamp))  # stable: ties stay in arrival order
            candidates.append(near)
        for combo in itertools.product(*candidates):
            if max(combo) - min(combo) < self.slop_ns:
                return combo
        return None

    def queued(self):
        """Number of messages waiting in each input queue (for diagnostics and tests)."""
        with self._lock:
            return [len(q) for q in self._queues]


def sensor_qos(depth=10):
    """Best-effort, volatile, keep-last QoS: receives from reliable and best-effort publishers.

    realsense-ros publishes reliable or best effort depending on its configuration; a
    best-effort volatile subscription matches either (a reliable one would not match a
    best-effort publisher).
    """
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.VOLATILE)


class SynchronizedSubscription:
    """Handle returned by :func:`subscribe_synchronized`; keep it alive as long as needed.

    ``implementation`` is ``"message_filters"`` or ``"fallback"``; ``subscriptions`` are the
    rclpy subscriptions; ``synchronizer`` the synchronizer object. ``destroy()`` removes the
    subscriptions from the node.
    """

    def __init__(self, node, implementation, subscriptions, synchronizer, filters=()):
        self.node = node
        self.implementation = implementation
        self.subscriptions = list(subscriptions)
        self.synchronizer = synchronizer
        self.filters = list(filters)  # message_filters.Subscriber objects, kept alive

    def destroy(self):
        for sub in self.subscriptions:
            self.node.destroy_subscription(sub)
        self.subscriptions = []


def subscribe_synchronized(node, specs, callback, queue_size=10, slop=0.05, qos=None,
                           use_message_filters=None, on_arrival=None):
    """Subscribe to ``specs`` = [(msg_type, topic), ...] and call ``callback(*msgs)`` per set.

    ``qos`` defaults to :func:`sensor_qos`. ``use_message_filters``: None = use it when
    importable, else the fallback; False = always the fallback; True = require it.
    ``on_arrival(i)`` is called for every message of input i before matching: with the
    number of sets, it tells how many frames the synchroniser could not match (and dropped).
    """
    if qos is None:
        qos = sensor_qos()
    if use_message_filters is None:
        use_message_filters = message_filters_available()
    if use_message_filters:
        import message_filters

        filters = [message_filters.Subscriber(node, msg_type, topic, qos_profile=qos)
                   for msg_type, topic in specs]
        sync = message_filters.ApproximateTimeSynchronizer(filters, queue_size, slop)
        sync.registerCallback(callback)
        if on_arrival is not None:
            for i, subscriber in enumerate(filters):
                subscriber.registerCallback(lambda msg, i=i: on_arrival(i))
        return SynchronizedSubscription(node, "message_filters", [f.sub for f in filters],
                                        sync, filters)

    sync = ApproximateTimeSynchronizerFallback(len(specs), queue_size, slop)
    sync.register_callback(callback)
    def receive(msg, i):
        if on_arrival is not None:
            on_arrival(i)
        sync.add(msg, i)

    subs = [node.create_subscription(msg_type, topic, lambda msg, i=i: receive(msg, i), qos)
            for i, (msg_type, topic) in enumerate(specs)]
    return SynchronizedSubscription(node, "fallback", subs, sync)
