"""The original scripts' log files, kept consistent across resumed runs.

``log/<variant>/log_train.txt``: ``====iteration_%d: fit=%.4f, reg=%.4f, orth=%.4f, acc=%.4f``
every 100 iterations; ``log/<variant>/log_test.txt``: ``++++iteration_%d: test acc=%.4f``.
A fresh run truncates both (as the original); a resumed run keeps them and drops
every line about an iteration after the one it resumes from.
"""

import os
import re

TRAIN_LOG = "log_train.txt"
TEST_LOG = "log_test.txt"
_ITERATION = re.compile(r"^(?:====|\+\+\+\+)iteration_(\d+):")


def train_line(i, fit, reg, orth, acc):
    return "====iteration_%d: fit=%.4f, reg=%.4f, orth=%.4f, acc=%.4f" % (i, fit, reg, orth, acc)


def test_line(i, acc):
    return "++++iteration_%d: test acc=%.4f" % (i, acc)


class RunLogs:
    """Appends the original's lines to ``log_train.txt`` / ``log_test.txt`` in ``folder``."""

    def __init__(self, folder, resume_after=None):
        """``resume_after=None``: truncate both files; else keep lines up to that iteration."""
        os.makedirs(folder, exist_ok=True)
        self.folder = folder
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

    def train(self, i, fit, reg, orth, acc):
        line = train_line(i, fit, reg, orth, acc)
        self._append(TRAIN_LOG, line)
        return line

    def test(self, i, acc):
        line = test_line(i, acc)
        self._append(TEST_LOG, line)
        return line
