"""Progress for people watching long work: bars on a terminal, plain lines in logs.

tqdm redraws its bar with carriage returns, which fills a log file or a CI log with one long
line per update. When standard error is not a terminal we print one line per finished unit of
work that matters (an epoch, a whole pass over a folder) instead.
"""

from __future__ import annotations

import sys
import time
from typing import Dict, Iterable, Optional


def interactive() -> bool:
    return sys.stderr.isatty()


def track(iterable: Iterable, total: Optional[int] = None, desc: str = "", unit: str = "it"):
    """A tqdm bar on a terminal; elsewhere the items pass through and one line is printed
    when they are done."""
    if interactive():
        from tqdm import tqdm
        return tqdm(iterable, total=total, desc=desc, unit=unit)
    return _quiet(iterable, desc, unit)


def _quiet(iterable, desc: str, unit: str):
    started, count = time.perf_counter(), 0
    for count, item in enumerate(iterable, 1):
        yield item
    print(f"{desc}: {count} {unit} in {time.perf_counter() - started:.1f} s", file=sys.stderr,
          flush=True)


class EpochProgress:
    """Training progress: a bar with the losses on a terminal, one line per epoch elsewhere."""

    def __init__(self, total: int, initial: int, desc: str):
        self.total, self.desc = total, desc
        self.started = time.perf_counter()
        self.bar = None
        if interactive():
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="epoch")

    def update(self, epoch: int, values: Dict[str, float]) -> None:
        shown = {k: f"{v:.3g}" for k, v in list(values.items())[:4]}
        if self.bar is not None:
            self.bar.set_postfix(shown)
            self.bar.update(1)
            return
        text = " ".join(f"{k} {v}" for k, v in shown.items())
        print(f"{self.desc}: epoch {epoch + 1}/{self.total} {text} "
              f"({time.perf_counter() - self.started:.0f} s)", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
