"""Eval progress: a tqdm bar on a terminal, periodic lines otherwise."""

from __future__ import annotations

import io

from ragkit.commands.progress import CountProgress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_a_line_every_interval_and_one_at_the_end():
    out, clock = io.StringIO(), Clock()
    progress = CountProgress("questions", every=10, stream=out, clock=clock)
    for done in range(1, 101):
        clock.now = done * 0.5  # two questions a second
        progress(done, 100)
    lines = out.getvalue().splitlines()
    assert len(lines) == 5  # at 10, 20, 30 and 40 s, and the last question (at 50 s)
    assert lines[0] == "questions: 20/100 (20 %), 2.00 questions/s, about 40 s left, 10 s"
    assert lines[-1].startswith("questions: 100/100 (100 %)")


def test_off_a_terminal_without_a_total_and_with_lines_turned_off():
    out, clock = io.StringIO(), Clock()
    progress = CountProgress("queries", every=5, stream=out, clock=clock)
    clock.now = 6
    progress(12, None)
    assert out.getvalue() == "queries: 12 queries, 2.00/s, 6 s\n"
    silent = io.StringIO()
    quiet = CountProgress("queries", every=0, stream=silent, clock=clock)
    quiet(5, 5)
    assert silent.getvalue() == ""


def test_on_a_terminal_a_tqdm_bar_that_closes_when_done():
    out = Tty()
    progress = CountProgress("questions", stream=out)
    progress(3, 10)
    assert progress.bar is not None and progress.bar.n == 3
    progress(10, 10)
    assert progress.bar is None and "questions:" in out.getvalue() and "/10" in out.getvalue()
