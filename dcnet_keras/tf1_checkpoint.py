"""Load checkpoints written by the original TF1 scripts into our Keras models.

TensorFlow only (reads with ``tf.train.load_checkpoint``).  Matching is by
structure, not by one spelling: every layer of a model built by
:mod:`dcnet_keras.models` is named after its TF1 variable scope (see
:mod:`dcnet_keras.models.naming`), and each moving average is found by its
owner scope and role, whichever way TensorFlow named the tensor it averaged:

==================  ==============================================================
role                checkpoint names seen
==================  ==============================================================
BN mean             ``<s>/bn/<s>/bn/moments/Squeeze/ExponentialMovingAverage``
                    (ImageNet ``.../bn_1/moments/...``; TF 1.0/1.1 ``.../moments/moments_1/mean/...``)
BN variance         ``.../moments/Squeeze_1/...`` (TF 1.0/1.1 ``.../variance/...``)
mean patch norm m   ``<s>/xnorm_bn/<s>/xnorm_bn/Mean/...`` (ImageNet ``<s>/bn/<s>/bn/Mean/...``)
==================  ==============================================================

Weights: ``<s>/filter``, ``<s>/radius`` ``[1,1,1,C]``, ``<s>/bn/gamma/bias``,
``<s>/bn/beta/bias``, ``<s>/alpha``.  Optimiser slots (``Adam``, ``Momentum``,
``beta1_power``...) are ignored, and so is zero-debiasing bookkeeping
(``.../biased``, ``.../local_step``) unless the model's own averages are
zero-debiased, in which case it is loaded too.
"""

import re

import numpy as np
import tensorflow as tf

from dcnet_keras.data.errors import first_line
from dcnet_keras.layers import DecoupledConv2D, PlainConv2D, TF1BatchNormalization, TF1PReLU
from dcnet_keras.layers.walk import all_layers
from dcnet_keras.models.naming import tf1_scope

_SHADOW = "ExponentialMovingAverage"
_STAT_SCOPES = ("bn", "xnorm_bn")
_OPTIMIZER_STATE = re.compile(
    r"(^|/)(beta1_power|beta2_power|global_step)$|/(Adam|Adam_1|Momentum)$")


class CheckpointMismatchError(ValueError):
    """The checkpoint does not fit the model; the message names both sides."""


def _moving_average_role(tensor_parts):
    """Role of the averaged tensor from its op name, or ``None``."""
    last = tensor_parts[-1]
    if "moments" in tensor_parts:
        if last in ("Squeeze", "mean"):
            return "mean"
        if last in ("Squeeze_1", "variance"):
            return "variance"
        return None
    if last == "Mean":
        return "patch_norm_mean"
    return None


def index_moving_averages(names):
    """``{(owner conv scope, role, part): checkpoint name}`` for every EMA variable.

    ``part`` is ``"shadow"``, ``"biased"`` or ``"local_step"``.
    """
    index = {}
    for name in names:
        parts = name.split("/")
        if parts[-1] == _SHADOW:
            part, body = "shadow", parts[:-1]
        elif len(parts) > 1 and parts[-2] == _SHADOW and parts[-1] in ("biased", "local_step"):
            part, body = parts[-1], parts[:-2]
        else:
            continue
        stat = next((i for i, p in enumerate(body) if p in _STAT_SCOPES), None)
        if stat is None or stat == 0:
            continue
        role = _moving_average_role(body)
        if role is not None:
            index[("/".join(body[:stat]), role, part)] = name
    return index


def _moving_average_targets(moving_average, owner, role):
    """``(variable, (owner, role, part))`` pairs of one :class:`MovingAverage`."""
    targets = [(moving_average.shadow, (owner, role, "shadow"))]
    if moving_average.zero_debias:
        targets += [(moving_average.biased, (owner, role, "biased")),
                    (moving_average.steps, (owner, role, "local_step"))]
    return targets


def checkpoint_plan(model):
    """``[(keras variable, checkpoint name or (owner, role, part))]`` for ``model``."""
    plan = []
    for layer in all_layers(model):
        scope = tf1_scope(layer.name)
        if isinstance(layer, DecoupledConv2D):
            plan.append((layer.kernel, f"{scope}/filter"))
            if hasattr(layer, "radius_weight"):
                plan.append((layer.radius_weight, f"{scope}/radius"))
            if layer.uses_patch_norm_mean:
                plan += _moving_average_targets(layer.moving_patch_norm_mean, scope,
                                                "patch_norm_mean")
        elif isinstance(layer, PlainConv2D):
            plan.append((layer.kernel, f"{scope}/filter"))
        elif isinstance(layer, TF1BatchNormalization):
            owner = scope.rsplit("/", 1)[0] if scope.endswith("/bn") else scope
            plan += [(layer.gamma, f"{scope}/gamma/bias"), (layer.beta, f"{scope}/beta/bias")]
            plan += _moving_average_targets(layer.moving_mean, owner, "mean")
            plan += _moving_average_targets(layer.moving_variance, owner, "variance")
        elif isinstance(layer, TF1PReLU):
            owner = scope.rsplit("/", 1)[0] if scope.endswith("/prelu") else scope
            plan.append((layer.alpha, f"{owner}/alpha"))
    return plan


def _same_values_shape(model_shape, checkpoint_shape):
    """Equal, or equal once size-1 axes are dropped (radius [1,1,1,C] vs [C])."""
    model_shape, checkpoint_shape = tuple(model_shape), tuple(checkpoint_shape)
    if model_shape == checkpoint_shape:
        return True
    return [d for d in model_shape if d != 1] == [d for d in checkpoint_shape if d != 1]


def _is_model_variable(name):
    if _OPTIMIZER_STATE.search(name):
        return False
    parts = name.split("/")
    return not (len(parts) > 1 and parts[-2] == _SHADOW)  # debias bookkeeping


def _unreadable(path, what, error):
    return CheckpointMismatchError(
        f"path: cannot read a TF1 checkpoint at {path!r}: {what}: {first_line(error)}")


#: what reading a checkpoint raises on a missing, truncated or corrupt file:
#: ``OpError`` (``NotFoundError``; a bad magic number, a block or tensor checksum
#: mismatch), ``IndexError`` ("Read less bytes than requested" from a truncated
#: data file), ``ValueError`` (a folder whose ``checkpoint`` file is missing,
#: garbage or not UTF-8), ``OSError``; the rest in case TensorFlow changes.
_READ_ERRORS = (tf.errors.OpError, IndexError, ValueError, OSError, RuntimeError,
                KeyError, TypeError)


def _open(path):
    """``(reader, {name: shape})``, or a one-line :class:`CheckpointMismatchError`."""
    try:
        reader = tf.train.load_checkpoint(path)
        return reader, reader.get_variable_to_shape_map()
    except _READ_ERRORS as error:
        raise _unreadable(path, "the index", error) from None


def _read_all(reader, path, shapes, keep):
    """Read every tensor of the checkpoint (TensorFlow checksums each one), optimiser
    slots included, so that a damaged file is refused whichever tensor the damage hit;
    returns ``{name: ndarray}`` for the names in ``keep``.  A one-line error names
    the first unreadable tensor."""
    values = {}
    for name in sorted(shapes):
        try:
            value = np.asarray(reader.get_tensor(name))
        except _READ_ERRORS as error:
            raise _unreadable(path, f"variable '{name}'", error) from None
        if list(value.shape) != list(shapes[name]):
            raise CheckpointMismatchError(
                f"path: cannot read a TF1 checkpoint at {path!r}: variable '{name}' has "
                f"{value.shape} values but the index says {shapes[name]}")
        if name in keep:
            values[name] = value
    return values


def load_tf1_checkpoint(model, path):
    """Assign every weight and moving average of ``model`` from a TF1 checkpoint.

    ``path`` is a checkpoint prefix (``.../model.ckpt``) or a folder with a
    ``checkpoint`` file.  All or nothing: every tensor of the checkpoint is read
    (TensorFlow verifies each one's checksum) and every one the model takes is
    checked (shape, and finite values) before any weight is assigned; if an
    assignment still fails, the weights assigned so far are restored.

    Raises :class:`CheckpointMismatchError` (a ``ValueError``):

    * one line naming ``path`` when it cannot be read: no such checkpoint, a
      corrupt or truncated index, a missing, truncated or corrupt data file
      (naming the first variable that cannot be read), or a weight with ``nan``
      or ``inf`` values (naming it);
    * naming the model weight and the checkpoint variable when one is missing or
      its shape differs, and listing checkpoint model variables the model has no
      place for.

    Returns ``{model weight path: checkpoint name}``.
    """
    reader, shapes = _open(path)
    moving_averages = index_moving_averages(shapes)

    problems, assignments, used = [], [], set()
    for variable, source in checkpoint_plan(model):
        name = moving_averages.get(source) if isinstance(source, tuple) else source
        if name is None or name not in shapes:
            wanted = (f"the {source[1]} moving average ({source[2]}) of scope '{source[0]}'"
                      if isinstance(source, tuple) else f"'{source}'")
            problems.append(f"model weight '{variable.path}' {tuple(variable.shape)}: "
                            f"checkpoint has no {wanted}")
            continue
        if not _same_values_shape(variable.shape, shapes[name]):
            problems.append(f"model weight '{variable.path}' has shape {tuple(variable.shape)} "
                            f"but checkpoint variable '{name}' has shape {shapes[name]}")
            continue
        assignments.append((variable, name))
        used.add(name)
    unused = sorted(n for n in shapes if n not in used and _is_model_variable(n))
    if unused:
        problems.append("checkpoint variables with no place in the model: "
                        + ", ".join(f"'{n}' {shapes[n]}" for n in unused))
    if problems:
        raise CheckpointMismatchError(
            f"load_tf1_checkpoint: checkpoint {path!r} does not fit model "
            f"'{model.name}':\n  " + "\n  ".join(problems))

    tensors = _read_all(reader, path, shapes, used)
    values = []
    for variable, name in assignments:
        value = tensors[name]
        if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
            bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
            raise CheckpointMismatchError(
                f"path: checkpoint {path!r}: variable '{name}' (model weight "
                f"'{variable.path}') has {bad} non-finite values (nan or inf) of "
                f"{np.size(value)}")
        values.append(np.asarray(value, dtype=variable.dtype).reshape(tuple(variable.shape)))

    previous = [np.array(variable.numpy()) for variable, _ in assignments]
    done = 0
    try:
        for (variable, _), value in zip(assignments, values):
            variable.assign(value)
            done += 1
    except BaseException:
        for (variable, _), value in zip(assignments[:done], previous):
            variable.assign(value)
        raise
    return {variable.path: name for variable, name in assignments}
