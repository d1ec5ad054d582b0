"""Learning-rate schedules of the original scripts.

The original multiplies its rate at the *start* of iteration ``i`` (0-based)
for ``i`` in the drop list, so update ``i`` uses the new rate.  A Keras
schedule receives the number of updates done so far (= ``i``) and
``PiecewiseConstantDecay`` switches *after* a boundary, so the boundaries are
the drop iterations minus one.  The drop iterations of each recipe live in
:mod:`dcnet_keras.recipes`.
"""

import keras


def step_schedule(base_lr, drop_iterations, factor=0.1):
    """``base_lr`` times ``factor`` once more from each of ``drop_iterations`` on."""
    values = [float(base_lr)]
    for _ in drop_iterations:
        values.append(values[-1] * factor)
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        boundaries=[int(i) - 1 for i in drop_iterations], values=values)


def cifar_schedule(base_lr=1e-3):
    """1e-3, x0.1 from iterations 20000, 30000 and 37500 (recipe ``dcnet_cifar``)."""
    from dcnet_keras.recipes import get_recipe

    return get_recipe("dcnet_cifar").schedule(base_lr)


def imagenet_schedule(base_lr=0.1):
    """0.1, /10 from iterations 200000, 375000 and 550000 (recipe ``dcnet_imagenet``)."""
    from dcnet_keras.recipes import get_recipe

    return get_recipe("dcnet_imagenet").schedule(base_lr)
