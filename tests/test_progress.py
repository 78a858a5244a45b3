"""kernel.progress: one progress line, in place on a terminal, periodic elsewhere."""

from __future__ import annotations

import io

from kernel.progress import ProgressLine


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_off_a_terminal_a_plain_line_at_most_every_interval():
    out, clock = io.StringIO(), Clock()
    line = ProgressLine(out, tty=False, interval=5, clock=clock)
    for second in range(12):
        clock.now = 100.0 + second
        line.update(f"done {second}")
    line.close()
    assert out.getvalue() == "done 0\ndone 5\ndone 10\n"


def test_on_a_terminal_the_line_is_rewritten_in_place_and_wiped_at_the_end():
    out, clock = io.StringIO(), Clock()
    with ProgressLine(out, tty=True, interval=0.5, clock=clock) as line:
        line.update("checked 1 of 3")
        clock.now += 1
        line.update("checked 2 of 3")
        line.update("checked 3 of 3")  # too soon: skipped
        line.update("checked 3 of 3 (forced)", force=True)
    text = out.getvalue()
    assert "\n" not in text
    assert text == ("\r\x1b[Kchecked 1 of 3" "\r\x1b[Kchecked 2 of 3"
                    "\r\x1b[Kchecked 3 of 3 (forced)" "\r\x1b[K")


def test_a_line_never_shown_leaves_nothing_behind():
    out = io.StringIO()
    ProgressLine(out, tty=True).close()
    assert out.getvalue() == ""


def test_the_interval_follows_the_stream():
    assert ProgressLine(io.StringIO()).tty is False  # StringIO is no terminal
    assert ProgressLine(io.StringIO()).interval == 5.0
    assert ProgressLine(io.StringIO(), tty=True).interval == 0.5
