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


class RunLogs:
    """Appends the ``log_format`` training / test lines to the two files."""

    def __init__(self, folder, log_format, resume_after=None):
        """``resume_after=None``: truncate both files; else keep lines up to that iteration."""
        os.makedirs(folder, exist_ok=True)
        self.folder = folder
        self.log_format = log_format
        for name in (TRAIN_LOG, TEST_LOG):
            path = os.path.join(folder, name)
            kept = []
            if resume_after is not None and os.path.exists(path):
                with open(path) as f:
                    for line in f:
                        match = _ITERATION.match(line)
                        if match is None or int(match.group(1)) <= resume_after:
                            kept.append(line)
            with open(path, "w") as f:
                f.writelines(kept)

    def _append(self, name, line):
        with open(os.path.join(self.folder, name), "a") as f:
            f.write(line + "\n")
        return line

    def train(self, i, metrics):
        return self._append(TRAIN_LOG, train_line(self.log_format, i, metrics))

    def test(self, i, accuracy):
        return self._append(TEST_LOG, test_line(self.log_format, i, accuracy))
