"""The original scripts' log lines, in files kept consistent across resumed runs.

A training-log and a test-log file in the run's log folder (``log_train.txt``
and ``log_test.txt``, as the original CIFAR script); the line formats come from
the recipe's ``log_format`` (``acc``: CIFAR ``====iteration_%d: fit=...,
acc=...`` / ``++++iteration_%d: test acc=...``; ``top1_top5``: ImageNet
``... top1=..., top5=...``).  A fresh run truncates
both files (as the original); a resumed run keeps them and drops every line
about an iteration after the one it resumes from.
"""

import os
import re

TRAIN_LOG = "log_train.txt"
TEST_LOG = "log_test.txt"
_ITERATION = re.compile(r"^(?:====|\+\+\+\+)iteration_(\d+):")




def train_line(log_format, i, m):
    """The original's training line for iteration ``i`` and the step values ``m``."""
    if log_format == "acc":
        return "====iteration_%d: fit=%.4f, reg=%.4f, orth=%.4f, acc=%.4f" % (
            i, m["fit"], m["reg"], m["orth"], m["top1"])
    return "====iteration_%d: fit=%.4f, reg=%.4f, orth=%.4f, top1=%.4f, top5=%.4f" % (
        i, m["fit"], m["reg"], m["orth"], m["top1"], m["top5"])


def test_line(log_format, i, accuracy):
    """The original's test line; ``accuracy`` is ``{k: top-k accuracy}``."""
    if log_format == "acc":
        return "++++iteration_%d: test acc=%.4f" % (i, accuracy[1])
    return "++++iteration_%d: top1=%.4f, top5=%.4f" % (i, accuracy[1], accuracy[5])


_TEST_LINES = {
    "acc": re.compile(r"^\+\+\+\+iteration_(\d+): test acc=(\d+\.\d+)\s*$"),
    "top1_top5": re.compile(r"^\+\+\+\+iteration_(\d+): top1=(\d+\.\d+), "
                            r"top5=(\d+\.\d+)\s*$"),
}


def parse_test_line(log_format, line):
    """``(i, {k: accuracy})`` of a :func:`test_line`, or ``None`` if ``line`` is not one."""
    match = _TEST_LINES[log_format].match(line)
    if match is None:
        return None
    values = [float(v) for v in match.groups()[1:]]
    return int(match.group(1)), dict(zip((1, 5), values))


def _complete_lines(path):
    """The lines of ``path`` that end in a newline (a last line without one was being
    written when the run was killed)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = f.readlines()
    return [line for line in lines if line.endswith("\n")]


class RunLogs:
    """Appends the ``log_format`` training / test lines to the two files.

    A rewrite (a fresh run's truncation, a resumed run's dropped lines) goes through a
    temporary file and a rename, so a kill at that moment leaves the old file or the new
    one; a resumed run whose files hold nothing to drop leaves them untouched.
    """

    def __init__(self, folder, log_format, resume_after=None):
        """``resume_after=None``: truncate both files; else keep lines up to that iteration."""
        from dcnet_keras.export.atomic import atomic_write_text

        os.makedirs(folder, exist_ok=True)
        self.folder = folder
        self.log_format = log_format
        for name in (TRAIN_LOG, TEST_LOG):
            path = os.path.join(folder, name)
            if resume_after is None:
                atomic_write_text(path, "")
                continue
            lines = _complete_lines(path)
            kept = [line for line in lines
                    if (match := _ITERATION.match(line)) is None
                    or int(match.group(1)) <= resume_after]
            if not os.path.exists(path) or kept != lines or os.path.getsize(path) != sum(
                    len(line.encode()) for line in lines):
                atomic_write_text(path, "".join(kept))

    def _append(self, name, line):
        with open(os.path.join(self.folder, name), "a") as f:
            f.write(line + "\n")
        return line

    def train(self, i, metrics):
        return self._append(TRAIN_LOG, train_line(self.log_format, i, metrics))

    def test(self, i, accuracy):
        return self._append(TEST_LOG, test_line(self.log_format, i, accuracy))

    def _last_test(self):
        for line in reversed(_complete_lines(os.path.join(self.folder, TEST_LOG))):
            parsed = parse_test_line(self.log_format, line)
            if parsed is not None:
                return parsed
        return None, None

    def last_test_iteration(self):
        """The iteration of the last test line, or ``None``."""
        return self._last_test()[0]

    def last_test_accuracy(self):
        """``{k: accuracy}`` of the last test line, or ``None``."""
        return self._last_test()[1]
