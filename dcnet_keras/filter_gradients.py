"""The "weighted gradients" of the paper's Table 1, an alternative to the weight projection.

Our reading of the paper: before the optimiser step, the gradient of every decoupled
filter (:class:`~dcnet_keras.layers.DecoupledConv2D`'s ``kernel``) is multiplied by that
filter's norm, per output channel, ``dL/dw * |w|`` with ``|w| = sqrt(sum_{kh,kw,cin} w^2 +
1e-4)`` (:func:`dcnet_keras.operators.weighted_filter_gradient`); every other gradient is
left as it is.  A decoupled operator sees ``w / |w|``, so its gradient shrinks as ``1/|w|``
when the filter grows; the projection keeps ``|w|`` at 1, this cancels the factor.
:class:`~dcnet_keras.train_step.TrainStep` applies it with ``weighted_gradients=True``
(``--weighted_gradients``); users' own loops call :func:`weight_filter_gradients`.
"""

from dcnet_keras.callbacks import decoupled_layers
from dcnet_keras.operators import weighted_filter_gradient


def decoupled_filter_positions(model, variables):
    """``{position in variables: layer}`` of every decoupled filter among ``variables``."""
    paths = {id(layer.kernel): layer for layer in decoupled_layers(model)}
    return {i: paths[id(v)] for i, v in enumerate(variables) if id(v) in paths}


def weight_filter_gradients(model, variables, gradients, positions=None):
    """``gradients`` (of ``variables``, e.g. ``model.trainable_variables``) with every
    decoupled filter's gradient multiplied by its norm ``|w|``; ``positions``: from
    :func:`decoupled_filter_positions` (computed when ``None``)."""
    if positions is None:
        positions = decoupled_filter_positions(model, variables)
    return [weighted_filter_gradient(g, positions[i].kernel)
            if i in positions and g is not None else g for i, g in enumerate(gradients)]
