"""``<model_dir>/model_spec.json``: which model a run's checkpoints hold.

A checkpoint stores weights, not the graph: a ``ball_cos`` checkpoint restores
into a ``tanh_cos`` model without complaint (the operators have the same
weights).  A run that writes this file beside ``checkpoints/`` lets the
loaders build the right model without flags, and refuse flags that disagree.

Format (JSON, UTF-8)::

    {"format": 1,
     "model": <ModelSpec.to_dict()>,          # network, variant, num_classes, ...
     "dataset": "cifar10" | null}             # what the run trained on

Written atomically (a temporary file in the same folder, then ``os.replace``).
"""

import json
import os

from dcnet_keras.export.atomic import atomic_write_text
from dcnet_keras.export.errors import ExportError

SPEC_FILE = "model_spec.json"
FORMAT = 1


def write_model_spec(model_dir, spec, dataset=None, extra=None):
    """Write ``spec`` (a ``ModelSpec``), ``dataset`` and the JSON-able ``extra`` entries (a
    training run's recipe) to ``<model_dir>/model_spec.json`` atomically; return its path."""
    record = dict(extra or {}, format=FORMAT, model=spec.to_dict(), dataset=dataset)
    text = json.dumps(record, indent=1, sort_keys=True)
    return atomic_write_text(os.path.join(os.fspath(model_dir), SPEC_FILE), text + "\n")


def find_spec_file(path):
    """The ``model_spec.json`` of the run a checkpoint path belongs to, or ``None``.

    ``path``: a model_dir, its ``checkpoints/`` folder, or a checkpoint prefix in it.
    """
    path = os.path.abspath(os.fspath(path))
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    for candidate in (folder, os.path.dirname(folder)):
        file = os.path.join(candidate, SPEC_FILE)
        if os.path.isfile(file):
            return file
        if os.path.basename(folder) != "checkpoints":
            break
    return None


def read_model_spec(path):
    """``(ModelSpec, dataset)`` stored for the run at ``path`` (see :func:`find_spec_file`),
    or ``(None, None)`` when there is no file."""
    from dcnet_keras.models.registry import ModelSpec

    file = find_spec_file(path)
    if file is None:
        return None, None
    try:
        with open(file, encoding="utf-8") as f:
            stored = json.load(f)
        model = dict(stored["model"])
        for key in ("options", "conv_options"):  # JSON lists back to tuples
            model[key] = {k: tuple(v) if isinstance(v, list) else v
                          for k, v in dict(model.get(key) or {}).items()}
        return ModelSpec(**model), stored.get("dataset")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ExportError(f"model: cannot read {file!r} ({SPEC_FILE}, format {FORMAT}): "
                          f"{type(error).__name__}: {error}") from None


def graph_fields(spec):
    """What decides a model's graph: network, magnitude, angular, batch norm, classes, the
    network's options (defaults filled in), conv options, patch norm."""
    from dcnet_keras.models.registry import get_network
    from dcnet_keras.variants import parse_variant

    variant = parse_variant(spec.variant, spec.batch_norm)
    options = {**get_network(spec.network).options, **dict(spec.options)}
    return dict(network=spec.network, magnitude=variant.magnitude, angular=variant.angular,
                batch_norm=variant.batch_norm, num_classes=spec.num_classes,
                options={k: tuple(v) if isinstance(v, list) else v for k, v in options.items()},
                conv_options=dict(spec.conv_options), patch_norm=spec.patch_norm)


def check_against_stored(spec, stored, file):
    """Raise :class:`ExportError` naming the first field where ``spec`` and ``stored`` differ."""
    ours, theirs = graph_fields(spec), graph_fields(stored)
    for key in ours:
        if ours[key] != theirs[key]:
            raise ExportError(
                f"model: the flags describe a model with {key} {ours[key]!r}, but {file} says "
                f"the run's model has {theirs[key]!r} (network {stored.network}, variant "
                f"{stored.variant}); drop the model flags to use the stored model")
