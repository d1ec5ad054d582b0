"""The original scripts' log lines, in files kept consistent across resumed runs.

A training-log and a test-log file in the run's log folder (``log_train.txt``
and ``log_test.txt``, as the original CIFAR script); the line formats come from
the script (CIFAR ``====iteration_%d: fit=..., acc=...`` / ``++++iteration_%d:
test acc=...``; ImageNet ``... top1=..., top5=...``).  A fresh run truncates
both files (as the original); a resumed run keeps them and drops every line
about an iteration after the one it resumes from.
"""

import os
import re

TRAIN_LOG = "log_train.txt"
TEST_LOG = "log_test.txt"
_ITERATION = re.compile(r"^(?:====|\+\+\+\+)iteration_(\d+):")


class RunLogs:
    """Appends ``train_line(i, metrics)`` / ``test_line(i, accuracy)`` to the two files."""

    def __init__(self, folder, train_line, test_line, resume_after=None):
        """``resume_after=None``: truncate both files; else keep lines up to that iteration."""
        os.makedirs(folder, exist_ok=True)
        self.folder = folder
        self._train_line = train_line
        self._test_line = test_line
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
        return self._append(TRAIN_LOG, self._train_line(i, metrics))

    def test(self, i, accuracy):
        return self._append(TEST_LOG, self._test_line(i, accuracy))
