"""Health counters for our nodes, published as diagnostic_msgs/DiagnosticArray on /diagnostics."""

import threading
import time

__all__ = ["NodeHealth"]


class NodeHealth:
    """Named counters plus rate-limited error logging and a periodic /diagnostics status.

    ``count(name, n)`` bumps a counter (``received``, ``processed`` and ``dropped`` exist from
    the start); ``report_error(kind, message)`` bumps ``errors.<kind>`` and logs an error at most
    once per ``error_log_period`` seconds per kind (rclpy ``throttle_duration_sec``; one logger
    object per kind, because rclpy keeps the throttle state per logger object and call site).

    Every ``period`` seconds one DiagnosticStatus is published, named ``"<node>: <task>"``:
    OK without errors since the previous report, WARN with some, ERROR with errors and nothing
    processed since the previous report. Every counter is a KeyValue. Thread-safe.
    """

    BASE_COUNTERS = ("received", "processed", "dropped")

    def __init__(self, node, task="inspection", hardware_id="", period=1.0,
                 error_log_period=2.0, topic="/diagnostics", stale_after=0.0):
        from diagnostic_msgs.msg import DiagnosticArray

        self._node = node
        self.name = f"{node.get_name()}: {task}"
        self.hardware_id = hardware_id
        self.error_log_period = error_log_period
        self._lock = threading.Lock()
        self._counters = {name: 0 for name in self.BASE_COUNTERS}
        # No input for stale_after seconds (0: never) makes the status WARN: a camera that
        # stopped must not look healthy.
        self.stale_after = float(stale_after)
        self._last_input = time.monotonic()
        self._last_report = time.monotonic()
        self._info = {}        # fixed facts: model, device
        self._gauges = {}      # name -> function read at each report (matched subscribers)
        self._samples = {}     # name -> values since the last report (latencies, stage times)
        self._last = dict(self._counters)  # counters at the previous report
        self._loggers = {}
        self._publisher = node.create_publisher(DiagnosticArray, topic, 10)
        self._timer = node.create_timer(period, self.publish)

    def count(self, name, n=1):
        """Add ``n`` to counter ``name`` (created at 0 on first use)."""
        with self._lock:
            self._counters[name] = self._counters.get(name, 0) + n
            if name == "received":
                self._last_input = time.monotonic()

    def info(self, key, value):
        """A fixed fact reported with every status (the model, the device)."""
        with self._lock:
            self._info[key] = str(value)

    def gauge(self, key, read):
        """A value read anew at each report, e.g. a publisher's matched subscriptions (seen
        from the writer: the side that drops a message nobody has matched yet)."""
        with self._lock:
            self._gauges[key] = read

    def observe(self, name, value):
        """One measurement (e.g. latency in ms); each report gives the median and 95th
        percentile of those since the previous report as ``<name>_p50`` / ``<name>_p95``."""
        with self._lock:
            self._samples.setdefault(name, []).append(float(value))

    def counters(self):
        """A copy of all counters."""
        with self._lock:
            return dict(self._counters)

    def report_error(self, kind, message):
        """Count an error of ``kind`` and log it, rate-limited per kind."""
        import rclpy.logging

        key = f"errors.{kind}"
        with self._lock:
            total = self._counters[key] = self._counters.get(key, 0) + 1
            logger = self._loggers.get(kind)
            if logger is None:
                logger = self._loggers[kind] = rclpy.logging.get_logger(
                    self._node.get_logger().name)
        logger.error(f"{kind}: {message} ({total} {kind} error(s) so far)",
                     throttle_duration_sec=self.error_log_period)

    def status(self):
        """Build the DiagnosticStatus for now and start a new reporting period."""
        from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

        with self._lock:
            counters, last = dict(self._counters), self._last
            self._last = dict(counters)
            silent = time.monotonic() - self._last_input
            now = time.monotonic()
            elapsed, self._last_report = max(now - self._last_report, 1e-9), now
            samples, self._samples = self._samples, {}
            info = dict(self._info)
            gauges = dict(self._gauges)
        new_errors = {name[len("errors."):]: value - last.get(name, 0)
                      for name, value in counters.items()
                      if name.startswith("errors.") and value > last.get(name, 0)}
        processed = counters["processed"] - last.get("processed", 0)
        if not new_errors:
            level, message = DiagnosticStatus.OK, "ok"
        else:
            detail = ", ".join(f"{kind} x{n}" for kind, n in sorted(new_errors.items()))
            level = DiagnosticStatus.WARN if processed else DiagnosticStatus.ERROR
            message = f"errors since last report: {detail}"
            if not processed:
                message += "; nothing processed"
        if self.stale_after > 0 and silent > self.stale_after:
            level = max(level, DiagnosticStatus.WARN)
            stale = f"no input for {silent:.1f} s"
            message = stale if message == "ok" else f"{stale}; {message}"
        values = [KeyValue(key=k, value=str(v)) for k, v in counters.items()]
        values.append(KeyValue(key="seconds_since_input", value=f"{silent:.1f}"))
        rate = (counters["received"] - last.get("received", 0)) / elapsed
        values.append(KeyValue(key="input_rate_hz", value=f"{rate:.1f}"))
        for name, series in sorted(samples.items()):
            ordered = sorted(series)
            for label, q in (("p50", 0.5), ("p95", 0.95)):
                value = ordered[min(len(ordered) - 1, int(q * len(ordered)))]
                values.append(KeyValue(key=f"{name}_{label}", value=f"{value:.1f}"))
        values += [KeyValue(key=k, value=v) for k, v in info.items()]
        values += [KeyValue(key=k, value=str(read())) for k, read in gauges.items()]
        return DiagnosticStatus(
            level=level, name=self.name, message=message, hardware_id=self.hardware_id,
            values=values)

    def publish(self):
        """Publish one DiagnosticArray now (the timer calls this); returns it."""
        from diagnostic_msgs.msg import DiagnosticArray

        array = DiagnosticArray(status=[self.status()])
        array.header.stamp = self._node.get_clock().now().to_msg()
        self._publisher.publish(array)
        return array

    def destroy(self):
        """Stop the timer and remove the publisher from the node."""
        self._node.destroy_timer(self._timer)
        self._node.destroy_publisher(self._publisher)
