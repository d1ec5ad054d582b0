"""Decoupled Networks (Liu et al., CVPR 2018) for Keras 3.

Sub-modules: ``operators`` (the math), ``layers``, ``regularizers``, ``losses``,
``optimizers``, ``schedules``, ``callbacks``, ``models``, ``variants``; TensorFlow
only: ``tf1_checkpoint``, ``train_step``, ``data``, ``training`` (the two original
scripts), ``evaluate`` and ``export`` (SavedModel for serving).
"""

__version__ = "0.1.0"
