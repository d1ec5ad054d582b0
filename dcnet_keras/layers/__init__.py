"""Keras layers of Decoupled Networks."""

from dcnet_keras.layers.batch_norm import TF1BatchNormalization
from dcnet_keras.layers.decoupled_conv import DecoupledConv2D
from dcnet_keras.layers.plain_conv import PlainConv2D
from dcnet_keras.layers.prelu import TF1PReLU

__all__ = ["DecoupledConv2D", "PlainConv2D", "TF1BatchNormalization", "TF1PReLU"]
