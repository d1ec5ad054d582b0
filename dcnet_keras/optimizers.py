"""Optimisers of the original scripts, with TF1 semantics."""

import keras

from dcnet_keras.validation import fraction

#: Adam epsilon of TF1 ``AdamOptimizer`` (Keras defaults to 1e-7).
TF1_ADAM_EPSILON = 1e-8


@keras.saving.register_keras_serializable(package="dcnet_keras")
class TF1Momentum(keras.optimizers.Optimizer):
    """TF1 ``MomentumOptimizer``: ``acc = momentum * acc + grad; w -= lr * acc``.

    The accumulator holds raw gradients, so a learning-rate drop scales the
    whole step at once.  (``keras.optimizers.SGD`` keeps ``lr * grad`` in its
    velocity and differs across a schedule boundary.)  Slot: ``accumulator``.
    """

    def __init__(self, learning_rate=0.1, momentum=0.9, name="tf1_momentum", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = fraction("momentum", momentum)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.accumulators = [self.add_variable_from_reference(v, name="accumulator")
                             for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        accumulator = self.accumulators[self._get_variable_index(variable)]
        lr = keras.ops.cast(learning_rate, variable.dtype)
        gradient = keras.ops.cast(gradient, variable.dtype)
        self.assign(accumulator, self.momentum * accumulator + gradient)
        self.assign_sub(variable, lr * accumulator)

    def get_config(self):
        config = super().get_config()
        config["momentum"] = self.momentum
        return config


def cifar_optimizer(learning_rate):
    """The CIFAR script's ``AdamOptimizer``: betas 0.9 / 0.999, epsilon 1e-8."""
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=0.9, beta_2=0.999,
                                 epsilon=TF1_ADAM_EPSILON)


def imagenet_optimizer(learning_rate):
    """The ImageNet script's ``MomentumOptimizer(lr, 0.9)``."""
    return TF1Momentum(learning_rate=learning_rate, momentum=0.9)


#: the recipes' optimiser names (:mod:`dcnet_keras.recipes`) -> ``f(learning_rate)``.
OPTIMIZERS = {"adam": cifar_optimizer, "tf1_momentum": imagenet_optimizer}
