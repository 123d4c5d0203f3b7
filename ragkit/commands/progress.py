"""Progress of a counted job (eval questions or queries) on stderr: a tqdm bar on a terminal, else a log line every
few seconds, so a run under nohup, CI or a pipe still says how far it is."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable


class CountProgress:
    """Called as ``progress(done, total)``; draws a tqdm bar on a terminal, else writes a line every ``every`` s."""

    def __init__(
        self,
        label: str,
        *,
        unit: str = "",
        every: float = 10.0,
        stream: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.unit = unit or label
        self.every = every
        self.stream = stream or sys.stderr
        self.clock = clock
        self.start = self.last = clock()
        self.bar: Any = None
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, done: int, total: int | None) -> None:
        if self._tty:
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=self.label, unit=f" {self.unit}", file=self.stream, leave=False)
            self.bar.update(done - self.bar.n)
            if total and done >= total:
                self.close()
            return
        now = self.clock()
        if not self.every or (now - self.last < self.every and not (total and done >= total)):
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        line = f"{self.label}: {done}"
        if total:
            eta = (total - done) / rate if rate > 0 else float("inf")
            line += f"/{total} ({100 * done / total:.0f} %), {rate:.2f} {self.unit}/s, " + (
                f"about {eta:.0f} s left" if eta != float("inf") else "no estimate yet"
            )
        else:
            line += f" {self.unit}, {rate:.2f}/s"
        self.stream.write(line + f", {elapsed:.0f} s\n")
        self.stream.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


__all__ = ["CountProgress"]
