"""A one-slot mailbox: a slow consumer always gets the newest item and never a backlog."""

from __future__ import annotations

import threading
from typing import Any, Optional


class LatestMailbox:
    def __init__(self):
        self._item: Optional[Any] = None
        self._condition = threading.Condition()
        self._closed = False
        self.dropped = 0

    def put(self, item) -> bool:
        """Store item; returns True when an unprocessed older item was dropped for it."""
        with self._condition:
            replaced = self._item is not None
            self.dropped += int(replaced)
            self._item = item
            self._condition.notify()
            return replaced

    def take(self, timeout: Optional[float] = None):
        """Wait for an item; None when closed or on timeout."""
        with self._condition:
            self._condition.wait_for(lambda: self._item is not None or self._closed, timeout)
            item, self._item = self._item, None
            return item

    def close(self):
        with self._condition:
            self._closed = True
            self._condition.notify_all()
