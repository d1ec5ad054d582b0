"""PReLU of the ImageNet network [``prelu`` in ``DCNet_modified_ResNet.py``]."""

import keras

from dcnet_keras import operators
from dcnet_keras.validation import image_input_shape


@keras.saving.register_keras_serializable(package="dcnet_keras")
class TF1PReLU(keras.layers.Layer):
    """``relu(x) + alpha_c * (x - |x|) / 2``, ``alpha`` per channel, init 0, no decay.

    Weight: ``alpha`` (shape ``[C]``; checkpoint name ``<scope>/alpha``).
    """

    def build(self, input_shape):
        channels = image_input_shape(self.name, input_shape)
        self.alpha = self.add_weight(name="alpha", shape=(channels,), initializer="zeros")

    def call(self, inputs):
        return operators.tf1_prelu(inputs, self.alpha)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)
