"""The scorer's mailbox: a slow consumer gets the newest items and never an unbounded backlog.

With ``capacity`` 1 (the default) only the newest item waits: a live line wants the verdict of
the part in front of the camera now. A larger capacity keeps that many, oldest first, so a
short burst (DDS delivers a few held-back samples at once, e.g. while a reader is still being
matched at start) is scored in full: for replays and evaluations, where every frame counts.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Optional


class LatestMailbox:
    def __init__(self, capacity: int = 1):
        if int(capacity) < 1:
            raise ValueError(f"mailbox capacity must be >= 1, got {capacity}")
        self._items = deque()
        self._capacity = int(capacity)
        self._condition = threading.Condition()
        self._closed = False
        self.dropped = 0

    def put(self, item: Any) -> Optional[Any]:
        """Store item; returns the oldest waiting item when it was dropped for it (its
        sender owes it an answer: a SKIPPED verdict), else None."""
        with self._condition:
            self._items.append(item)
            dropped = self._items.popleft() if len(self._items) > self._capacity else None
            if dropped is not None:
                self.dropped += 1
            self._condition.notify()
            return dropped

    def take(self, timeout=None):
        """Wait for an item (the oldest kept); None when closed or on timeout."""
        with self._condition:
            self._condition.wait_for(lambda: self._items or self._closed, timeout)
            if self._closed or not self._items:
                return None
            return self._items.popleft()

    def close(self):
        with self._condition:
            self._closed = True
            self._condition.notify_all()
