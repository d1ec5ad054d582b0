"""Decoupled Networks (Liu et al., CVPR 2018) for Keras 3.

Backend-agnostic (``keras.ops``): ``operators`` (the math), ``layers``, ``regularizers``,
``losses``, ``optimizers``, ``schedules``, ``callbacks``, ``models`` (the networks and
``build_model``), ``presets``, ``recipes``, ``variants``.  TensorFlow only: ``train_step``
(the one training step), ``accuracy``, ``tf1_checkpoint``, ``data`` (datasets and their
registry), ``training`` (the training command and the original scripts), ``evaluate`` and
``export`` (SavedModel for serving).  ``python -m dcnet_keras.list`` shows the registries.
"""

__version__ = "0.1.0"

# Registers every serialisable object (layers, regularizers, the loss, TF1Momentum) with
# Keras, so ``keras.models.load_model`` finds them after ``import dcnet_keras`` alone.
# Keras-only modules; TensorFlow is imported only as far as the Keras backend does.
from dcnet_keras import layers, losses, optimizers, regularizers  # noqa: E402

__all__ = ["__version__", "layers", "losses", "optimizers", "regularizers"]
