"""Adversarial images: FGSM and BIM, white-box and black-box accuracy under attack.

Backend-neutral (``keras.ops``, plus :func:`dcnet_keras.input_gradients.input_gradient` for
the one gradient); imports with TensorFlow absent.  The networks take RGB in 0..255, so
images are float32 in ``[0, 255]``, ``epsilon`` and ``step`` are in grey levels, and labels
are integer class ids ``[N]``.  The attack loss is the batch mean of a per-example loss,

    L(x) = mean_n loss(labels, logits_fn(x))_n,

``loss`` by default :func:`softmax_cross_entropy`, the plain ``-log softmax(logits)[label]``
(:data:`ATTACK_LOSSES` ``"softmax"``; ``"training"`` is the model's own label-smoothed
training loss, :func:`dcnet_keras.losses.per_example_cross_entropy`).

* FGSM (Goodfellow et al. 2015): ``x_adv = clip(x + epsilon * sign(grad_x L(x)), 0, 255)``.
* BIM (Kurakin et al. 2017): ``x_0 = x``,
  ``x_{t+1} = clip(clip(x_t + step * sign(grad L(x_t)), x - epsilon, x + epsilon), 0, 255)``
  for ``t = 0 .. iterations - 1``; one iteration with ``step = epsilon`` is FGSM.

``sign(0) = 0``: a pixel whose gradient is exactly zero is left alone, and so is one whose
gradient is NaN (as an untrained tanh / ball model's zero moving average of the patch norm
gives, ``0 / 0`` in the magnitude's derivative), so the images always stay in the box.

Why not the training loss by default: it is label-smoothed, and for an image whose every
wrong class has softmax probability below its target ``0.01 / K`` that loss *grows* as
those probabilities shrink, so its gradient points towards a more confident right answer
and FGSM / BIM on it leave such an image right (an over-confident model would look
robust).  The mean over the
batch scales every per-example gradient by ``1 / N``, which leaves its sign, and so each
image's perturbation, as the image alone would get it.  :func:`fgsm` and :func:`bim` read no
value back to the host and branch on no tensor, so they trace inside a ``tf.function`` (an
adversarial training step calls :func:`fgsm` with the model in training mode); their result
is a constant for any enclosing gradient (``stop_gradient``).  :func:`craft` checks the
arguments first; :func:`attack_accuracy` counts top-1 accuracy on clean and attacked images,
white-box (crafted on the model under test) or black-box (crafted on another model).
"""

import numbers

import numpy as np
from keras import ops

from dcnet_keras import validation
from dcnet_keras.accuracy import count_in_top_k
from dcnet_keras.input_gradients import input_gradient

#: the perturbation bound, in grey levels of the 0..255 input.
DEFAULT_EPSILON = 8.0
#: BIM's step per iteration, in grey levels.
DEFAULT_BIM_STEP = 1.0
DEFAULT_BIM_ITERATIONS = 10
ATTACKS = ("fgsm", "bim")


def softmax_cross_entropy(labels, logits):
    """``-log softmax(logits)[label]`` per image, ``[N]`` (float32; no smoothing, no floor)."""
    logits = ops.cast(logits, "float32")
    labels = ops.reshape(ops.cast(labels, "int32"), (-1, 1))
    log_probabilities = ops.log_softmax(logits, axis=-1)
    return -ops.take_along_axis(log_probabilities, labels, axis=1)[:, 0]


def attack_loss(name):
    """The per-example loss an attack ascends: ``"softmax"`` (:func:`softmax_cross_entropy`,
    the default) or ``"training"`` (the model's own training loss)."""
    name = validation.choice("loss", name, ATTACK_LOSSES)
    if name == "training":
        from dcnet_keras.losses import per_example_cross_entropy

        return per_example_cross_entropy
    return softmax_cross_entropy


#: the losses :func:`attack_loss` names.
ATTACK_LOSSES = ("softmax", "training")


def _default_loss(loss):
    if loss is None:
        return softmax_cross_entropy
    if isinstance(loss, str):
        return attack_loss(loss)
    if not callable(loss):
        raise ValueError(f"loss: expected a function (labels, logits) -> per-example losses "
                         f"[N], received {loss!r}")
    return loss


def _check_number(check, argument, value):
    """``check(argument, value)`` unless ``value`` is a tensor (e.g. traced in a
    ``tf.function``), which passes unchecked: no host read of a tensor's value."""
    if isinstance(value, (numbers.Number, str, np.generic, np.ndarray)) or value is None:
        return check(argument, value)
    return value


def _objective(logits_fn, labels, loss):
    """``x -> L(x) = mean_n loss(labels, logits_fn(x))_n`` in float32."""
    loss = _default_loss(loss)
    labels = ops.reshape(ops.convert_to_tensor(labels), (-1,))

    def objective(x):
        return ops.mean(ops.cast(loss(labels, logits_fn(x)), "float32"))

    return objective


def _float_images(images):
    return ops.cast(ops.convert_to_tensor(images), "float32")


def _sign_of_gradient(objective, x):
    """``sign(grad L(x))``, with a NaN gradient entry taken as 0 (the pixel left alone)."""
    gradient = ops.cast(input_gradient(objective, x), "float32")
    return ops.sign(ops.where(ops.isnan(gradient), ops.zeros_like(gradient), gradient))


def fgsm(logits_fn, images, labels, epsilon, loss=None):
    """FGSM: ``clip(images + epsilon * sign(grad_x L(images)), 0, 255)``, float32.

    ``L(x) = mean_n loss(labels, logits_fn(x))_n`` (``loss(labels, logits) -> [N]`` or a
    name of :data:`ATTACK_LOSSES`, default :func:`softmax_cross_entropy`); ``logits_fn(images) -> logits``
    ``[N, K]``; ``images`` float32 ``[N, H, W, C]`` in 0..255 (cast to float32), ``labels``
    integer ``[N]``; ``epsilon`` a number (checked ``>= 0``) or a scalar tensor.  No
    checks on tensor values: traceable in a ``tf.function``.
    """
    epsilon = _check_number(validation.non_negative_float, "epsilon", epsilon)
    images = _float_images(images)
    direction = _sign_of_gradient(_objective(logits_fn, labels, loss), images)
    adversarial = ops.clip(images + ops.cast(epsilon, "float32") * direction, 0.0, 255.0)
    return ops.stop_gradient(adversarial)


def bim(logits_fn, images, labels, epsilon, step=DEFAULT_BIM_STEP,
        iterations=DEFAULT_BIM_ITERATIONS, loss=None):
    """BIM (iterated FGSM), float32: ``x_0 = images`` and, ``iterations`` times,

        x_{t+1} = clip(clip(x_t + step * sign(grad L(x_t)), images - epsilon,
                            images + epsilon), 0, 255)

    (``L`` as in :func:`fgsm`), so ``|x_T - images| <= epsilon`` and ``0 <= x_T <= 255``.
    ``iterations``: a Python int (the loop is unrolled when traced); one iteration with
    ``step = epsilon`` equals :func:`fgsm` exactly.
    """
    epsilon = _check_number(validation.non_negative_float, "epsilon", epsilon)
    step = _check_number(validation.positive_float, "step", step)
    iterations = validation.positive_int("iterations", iterations)
    images = _float_images(images)
    objective = _objective(logits_fn, labels, loss)
    epsilon = ops.cast(epsilon, "float32")
    step = ops.cast(step, "float32")
    lower, upper = images - epsilon, images + epsilon
    x = images
    for _ in range(iterations):
        x = x + step * _sign_of_gradient(objective, x)
        x = ops.clip(ops.minimum(ops.maximum(x, lower), upper), 0.0, 255.0)
    return ops.stop_gradient(x)


def check_attack(attack, epsilon, step=DEFAULT_BIM_STEP, iterations=DEFAULT_BIM_ITERATIONS):
    """``(attack, epsilon, step, iterations)`` checked, one line ``ValueError`` each:
    ``attack`` one of :data:`ATTACKS`, ``epsilon`` a finite number ``>= 0``, ``step`` a
    finite number ``> 0``, ``iterations`` a positive integer (also for FGSM, which uses
    neither ``step`` nor ``iterations``)."""
    return (validation.choice("attack", attack, ATTACKS),
            validation.non_negative_float("epsilon", epsilon),
            validation.positive_float("step", step),
            validation.positive_int("iterations", iterations))


def craft(attack, logits_fn, images, labels, epsilon=DEFAULT_EPSILON, step=DEFAULT_BIM_STEP,
          iterations=DEFAULT_BIM_ITERATIONS, loss=None):
    """The ``attack`` (``"fgsm"``: :func:`fgsm`; ``"bim"``: :func:`bim`) images of ``images``,
    crafted on ``logits_fn``; the arguments are checked (:func:`check_attack`, and
    ``logits_fn`` / ``loss`` callable) before any work.  ``epsilon == 0``: ``images``
    themselves (as float32), no gradient computed.
    """
    attack, epsilon, step, iterations = check_attack(attack, epsilon, step, iterations)
    if not callable(logits_fn):
        raise ValueError(f"logits_fn: expected a function images -> logits, received "
                         f"{logits_fn!r}")
    loss = _default_loss(loss)
    if epsilon == 0:
        return _float_images(images)
    if attack == "fgsm":
        return fgsm(logits_fn, images, labels, epsilon, loss=loss)
    return bim(logits_fn, images, labels, epsilon, step, iterations, loss=loss)


def count_correct(labels, logits):
    """Top-1 hits, a Python int, as :func:`dcnet_keras.accuracy.count_in_top_k` counts them
    (a tie with another class, or a non-finite logit, is a miss)."""
    return int(ops.convert_to_numpy(count_in_top_k(labels, logits, 1)))


def attack_accuracy(target_fn, batches, attack, epsilon=DEFAULT_EPSILON,
                    step=DEFAULT_BIM_STEP, iterations=DEFAULT_BIM_ITERATIONS, source_fn=None,
                    loss=None):
    """``dict(clean=a, adversarial=b, images=n)``: top-1 accuracy of ``target_fn`` on the
    clean images and on their ``attack`` images, over the ``n`` images of ``batches``.

    ``a = #{clean images target_fn classifies right} / n`` and
    ``b = #{attacked images target_fn classifies right} / n`` (:func:`count_correct`);
    ``batches``: an iterable of ``(images, labels)`` (NumPy arrays or tensors, images 0..255),
    every image counted once.  White-box when ``source_fn`` is ``None`` (the images are
    crafted on ``target_fn``), black-box otherwise (crafted on ``source_fn``, classified
    by ``target_fn``); see :func:`craft`.  ``epsilon == 0`` gives ``b == a`` exactly (the
    clean predictions are reused).  The arguments are checked before the first batch.
    """
    attack, epsilon, step, iterations = check_attack(attack, epsilon, step, iterations)
    for argument, fn in (("target_fn", target_fn), ("source_fn", source_fn)):
        if fn is not None and not callable(fn):
            raise ValueError(f"{argument}: expected a function images -> logits, received "
                             f"{fn!r}")
    loss = _default_loss(loss)
    craft_on = target_fn if source_fn is None else source_fn
    clean = adversarial = seen = 0
    for images, labels in batches:
        images = _float_images(images)
        hits = count_correct(labels, target_fn(images))
        clean += hits
        if epsilon == 0:
            adversarial += hits
        else:
            crafted = craft(attack, craft_on, images, labels, epsilon, step, iterations, loss)
            adversarial += count_correct(labels, target_fn(crafted))
        seen += int(ops.shape(images)[0])
    if seen == 0:
        raise ValueError("batches: no images to attack (the iterable is empty)")
    return dict(clean=clean / seen, adversarial=adversarial / seen, images=seen)
