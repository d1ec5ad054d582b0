"""Batch norm with the original's statistics [``batch_norm`` in both networks]."""

import keras
from keras import ops

from dcnet_keras import distribute
from dcnet_keras.moving_average import MovingAverage
from dcnet_keras.regularizers import TF1WeightDecay
from dcnet_keras.validation import fraction, image_input_shape, non_negative_float, positive_float


@keras.saving.register_keras_serializable(package="dcnet_keras")
class TF1BatchNormalization(keras.layers.Layer):
    """``tf.nn.batch_normalization(x, mean, var, beta, gamma, 1e-3)`` as the original.

    * training: ``mean``/``var`` are the biased batch moments over N, H, W
      (over the global batch under ``tf.distribute``), and the moving averages
      take one step: ``avg -= (avg - batch_value) * (1 - decay)``;
    * inference: the moving averages, which start at **0** and are not
      debiased (unlike ``keras.layers.BatchNormalization``, whose moving
      variance starts at 1).

    Output ``x * g + (beta - mean * g)`` with ``g = gamma / sqrt(var + epsilon)``.
    ``weight_decay`` puts ``wd * sum(.^2) / 2`` on gamma and beta (the original's
    ``get_bias`` regulariser: 5e-4 on CIFAR, 1e-4 on ImageNet).

    Weights: ``gamma`` (init 1), ``beta`` (0), ``moving_mean``, ``moving_variance``.
    """

    def __init__(self, epsilon=1e-3, decay=0.999, weight_decay=0.0, zero_debias=False,
                 **kwargs):
        super().__init__(**kwargs)
        self.epsilon = positive_float("epsilon", epsilon)
        self.decay = fraction("decay", decay)
        self.weight_decay = non_negative_float("weight_decay", weight_decay)
        self.zero_debias = bool(zero_debias)

    def build(self, input_shape):
        channels = image_input_shape(self.name, input_shape)
        regularizer = TF1WeightDecay(self.weight_decay) if self.weight_decay else None
        # float32 whatever the compute dtype: the statistics and the affine map are formed
        # in float32 and cast once (see ``call``).
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones",
                                     regularizer=regularizer, autocast=False)
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros",
                                    regularizer=regularizer, autocast=False)
        self.moving_mean = MovingAverage(self, "moving_mean", (channels,), self.decay,
                                         self.zero_debias)
        self.moving_variance = MovingAverage(self, "moving_variance", (channels,), self.decay,
                                             self.zero_debias)

    def call(self, inputs, training=False):
        """Under a mixed policy the moments are taken of the inputs cast to the variable
        dtype (float32) and ``g``, ``beta - mean * g`` are formed in it, then cast to the
        compute dtype."""
        if training:
            mean, var = distribute.moments(ops.cast(inputs, self.variable_dtype), axes=(0, 1, 2))
            self.moving_mean.update(mean)
            self.moving_variance.update(var)
        else:
            mean, var = self.moving_mean.value, self.moving_variance.value
        scale = ops.rsqrt(var + self.epsilon) * self.gamma
        shift = self.beta - mean * scale
        return inputs * ops.cast(scale, self.compute_dtype) + ops.cast(shift, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(epsilon=self.epsilon, decay=self.decay,
                      weight_decay=self.weight_decay, zero_debias=self.zero_debias)
        return config
