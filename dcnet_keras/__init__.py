"""Decoupled Networks (Liu et al., CVPR 2018) for Keras 3.

Sub-modules: ``operators`` (the math), ``layers``, ``regularizers``, ``losses``,
``optimizers``, ``schedules``, ``callbacks``, ``models`` and, TensorFlow only,
``tf1_checkpoint``.
"""

__version__ = "0.1.0"
