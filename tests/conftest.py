"""Settings for the whole test run, applied before TensorFlow is imported.

``TF_ENABLE_ONEDNN_OPTS=0``: TensorFlow's CPU kernels without oneDNN's.  On CPUs with
AVX-512 BF16 (seen on the development machines) oneDNN's kernels round differently enough
that, after the three momentum steps of ``test_tf1_fixtures.py`` on the ImageNet network
(learning rate 0.1), one batch-norm moving mean is 0.45 % away from the original's; with
TensorFlow's own kernels it matches to 1e-3 as on other CPUs.  Subprocesses inherit it.
A value set in the environment is kept.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
