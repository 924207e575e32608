"""An rclpy node in the test process, spun in a thread, that talks to the nodes under test."""

from __future__ import annotations

import threading
import time


class Peer:
    """Publishes to and listens to the nodes under test, in its own rclpy context."""

    def __init__(self, name: str = "test_peer"):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.received: dict = {}
        self.subscriptions: dict = {}
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self):
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def listen(self, msg_type, topic: str, qos=10) -> list:
        """Collect every message on ``topic`` into ``self.received[topic]``."""
        self.received[topic] = []
        self.subscriptions[topic] = self.node.create_subscription(
            msg_type, topic, self.received[topic].append, qos)
        return self.received[topic]

    def wait_for_publishers(self, topics, timeout: float = 60.0, process=None) -> None:
        """Block until each listened topic has matched a publisher: what a node publishes
        before that is lost to this listener."""
        deadline = time.monotonic() + timeout
        while any(self.subscriptions[t].get_publisher_count() < 1 for t in topics):
            if process is not None and process.poll() is not None:
                raise AssertionError(f"node exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no publisher matched {list(topics)} within {timeout} s")
            time.sleep(0.05)

    def wait_for(self, topic: str, count: int = 1, timeout: float = 30.0, process=None) -> list:
        deadline = time.monotonic() + timeout
        while len(self.received[topic]) < count:
            if process is not None and process.poll() is not None:
                raise AssertionError(f"node exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received[topic])}/{count} on {topic}")
            time.sleep(0.05)
        return self.received[topic]

    @staticmethod
    def wait_for_subscribers(publishers, timeout: float = 60.0, process=None) -> None:
        """Block until every publisher has matched a subscription: messages sent before
        discovery finishes are lost, and a test that needs a particular message must not
        race the node's discovery."""
        deadline = time.monotonic() + timeout
        while any(p.get_subscription_count() < 1 for p in publishers):
            if process is not None and process.poll() is not None:
                raise AssertionError(f"node exited with {process.returncode}")
            if time.monotonic() > deadline:
                unmatched = [p.topic_name for p in publishers if p.get_subscription_count() < 1]
                raise AssertionError(f"no subscriber matched {unmatched} within {timeout} s")
            time.sleep(0.05)

    def close(self):
        self._stop.set()
        self._thread.join()
        self.node.destroy_node()
        self.context.try_shutdown()
