"""What a training run prints on stdout: the original's lines, and a progress bar on a terminal.

Every line (the original's ``====iteration_...`` / ``++++iteration_...`` lines and the
run's ``==== ...`` messages) is written whole, on its own line, in order.  The bar is
drawn only when the stream is a terminal (``isatty()``) and the bar is asked for: it is
one line below the printed ones, rewritten in place (``\\r``); before a line is printed
it is erased (``\\r`` then ``ESC[K``, erase to the end of the line) and it is drawn again
after the line.  On a file or a pipe nothing but the lines is written: no ``\\r``, no
escape codes.

The bar only shows what the loop gives it (:meth:`RunOutput.progress`), at the loop's
sync points; it reads nothing from the device itself, and redraws at most every
``min_interval`` seconds of wall time.
"""

import shutil
import sys
import time

#: back to column 0, then erase to the end of the line.
ERASE_LINE = "\r\x1b[K"


def _is_terminal(stream):
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except (ValueError, OSError):  # a closed stream
        return False


def bar_text(done, total, rate, values, width=80):
    """The bar: ``' 120/42500 [#.........]  35.2 it/s  fit=2.1234  top1=0.2500'``.

    ``done``: iterations finished; ``rate``: iterations per second, or ``None`` before it is
    known; ``values``: the newest step values (``fit``, ``top1`` shown), or ``None``.  The
    text is cut to ``width - 1`` characters (the last column would wrap some terminals).
    """
    digits = len(str(total))
    fill = 20 * min(done, total) // total if total > 0 else 20
    parts = [f"{done:>{digits}}/{total} [" + "#" * fill + "." * (20 - fill) + "]"]
    if rate is not None:
        parts.append(f"{rate:.1f} it/s")
    if values:
        parts += [f"{name}={values[name]:.4f}" for name in ("fit", "top1") if name in values]
    return "  ".join(parts)[:max(width - 1, 1)]


class RunOutput:
    """Prints a run's lines on ``stream`` (default ``sys.stdout``) and, on a terminal with
    ``bar=True``, a progress bar of ``total`` iterations below them.

    ``start``: the iterations already done when the run began (a resume); the rate is
    measured from the first :meth:`progress` call on (the first step's tracing and
    compilation left out); ``clock``: seconds, monotonic (a test may pass its own).
    """

    def __init__(self, total, start=0, stream=None, bar=True, min_interval=0.5,
                 clock=time.monotonic):
        self.stream = sys.stdout if stream is None else stream
        self.total = total
        self.bar = bool(bar) and _is_terminal(self.stream)
        self.min_interval = min_interval
        self.clock = clock
        self._first = None  # (done, time) at the first progress call
        self._done, self._values, self._rate = start, None, None
        self._drawn_at = None  # when the bar was last drawn; None: not on screen

    def _write(self, text):
        self.stream.write(text)
        self.stream.flush()

    def _bar(self):
        width = shutil.get_terminal_size((80, 24)).columns
        return bar_text(self._done, self.total, self._rate, self._values, width)

    def _draw(self):
        self._write(ERASE_LINE + self._bar())
        self._drawn_at = self.clock()

    def line(self, text):
        """Print ``text`` on its own line; the bar, if shown, is erased first and drawn again
        below it."""
        if self._drawn_at is None:
            self._write(text + "\n")
            return
        self._write(ERASE_LINE + text + "\n")
        self._draw()

    def progress(self, done, values=None):
        """``done`` iterations finished, ``values`` the newest step values read (or ``None``);
        redraws the bar if it is on and ``min_interval`` has passed since the last draw."""
        now = self.clock()
        self._done = done
        if values is not None:
            self._values = values
        if self._first is None:
            self._first = (done, now)
        elif now > self._first[1] and done > self._first[0]:
            self._rate = (done - self._first[0]) / (now - self._first[1])
        if self.bar and (self._drawn_at is None or now - self._drawn_at >= self.min_interval):
            self._draw()

    def close(self, keep=True):
        """End the bar: drawn a last time and left on its own line (``keep``), or erased (after
        an error, so that what follows starts at column 0).  Lines printed afterwards are
        plain."""
        if self._drawn_at is None:
            return
        self._write(ERASE_LINE + (self._bar() + "\n" if keep else ""))
        self._drawn_at = None
        self.bar = False
