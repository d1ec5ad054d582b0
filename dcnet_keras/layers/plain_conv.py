"""The original's plain convolution (``norm=False``): shortcut and score layers."""

import keras

from dcnet_keras import operators
from dcnet_keras.layers.conv_common import build_kernel, conv_output_shape
from dcnet_keras.regularizers import TF1WeightDecay
from dcnet_keras.validation import (int_pair, non_negative_float, padding as check_padding,
                                    positive_int)


def he_normal_untruncated():
    """``N(0, sqrt(2 / (k*k*Cin)))``, untruncated: the CIFAR code's filter init."""
    return keras.initializers.VarianceScaling(scale=2.0, mode="fan_in",
                                              distribution="untruncated_normal")


@keras.saving.register_keras_serializable(package="dcnet_keras")
class PlainConv2D(keras.layers.Layer):
    """``conv2d(x, w)`` with TF padding, no bias, TF1 weight decay on ``w``.

    The original's ``_conv_layer(..., norm=False, reg=True)``: a 1x1 shortcut or
    the score layer, with ``wd * sum(w^2) / 2`` (``weight_decay``) on the filter.

    Weight: ``kernel`` ``[kh, kw, Cin, filters]`` (checkpoint ``<scope>/filter``).
    """

    def __init__(self, filters, kernel_size, strides=1, padding="same", weight_decay=0.0,
                 kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = positive_int("filters", filters)
        self.kernel_size = int_pair("kernel_size", kernel_size)
        self.strides = int_pair("strides", strides)
        self.padding = check_padding("padding", padding)
        self.weight_decay = non_negative_float("weight_decay", weight_decay)
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer if kernel_initializer is not None else he_normal_untruncated())

    def build(self, input_shape):
        build_kernel(self, input_shape,
                     TF1WeightDecay(self.weight_decay) if self.weight_decay else None)

    def call(self, inputs):
        return operators.conv2d(inputs, self.kernel, self.strides, self.padding)

    def compute_output_shape(self, input_shape):
        return conv_output_shape(input_shape, self.filters, self.kernel_size, self.strides,
                                 self.padding)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size,
                      strides=self.strides, padding=self.padding,
                      weight_decay=self.weight_decay,
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config
