"""What a run is, stored beside its checkpoints, and the check that a resume is the same run.

``<model_dir>/model_spec.json`` (written by :func:`dcnet_keras.export.write_model_spec`,
which export and evaluate read) holds the model, the dataset and, for training runs, the
recipe's numbers, the augmentation, the seed and ``mixed_precision`` (``--mixed_precision``:
a float16 run's optimiser is a ``LossScaleOptimizer``, whose checkpoint has another
structure; a record written before the field existed counts as ``"off"``; ``--jit_compile``
is not stored, it may change between runs) and the optimisation switches
(:data:`TRAINING_SWITCHES`: ``--no-projection``, ``--weighted_gradients``,
``--adversarial``, ``--adversarial_epsilon``; an older record counts as their defaults).  A resume whose flags contradict it stops
with one line naming the flag, the stored value and the given one; ``--max_steps`` may
grow (never below the checkpoint's iteration), and the log / test / checkpoint intervals may
change.
"""

import dataclasses
import json
import os

from dcnet_keras.export.spec_file import SPEC_FILE, write_model_spec

#: recipe fields a resume must keep (the others only say how long and how often).
FIXED_RECIPE_FIELDS = ("name", "optimizer", "base_lr", "drops", "drop_factor", "batch_size",
                       "shuffle_buffer")
#: which flag sets what the record holds.
FLAGS = {"network": "--network", "variant": "--variant", "num_classes": "--num_classes",
         "batch_norm": "--no_bn", "zero_debias": "--debias_moving_averages",
         "patch_norm": "patch_norm", "conv_options": "conv_options", "widths": "--widths",
         "units_per_stage": "--units_per_stage", "relu": "--no_relu", "fc_width": "fc_width",
         "dataset": "--dataset", "augmentation": "--augmentation", "name": "--recipe",
         "optimizer": "--recipe", "drops": "--recipe", "drop_factor": "--recipe",
         "base_lr": "--base_lr", "batch_size": "--batch_size",
         "shuffle_buffer": "--shuffle_buffer", "mixed_precision": "--mixed_precision",
         "projection": "--projection", "weighted_gradients": "--weighted_gradients",
         "adversarial": "--adversarial", "adversarial_epsilon": "--adversarial_epsilon"}
#: what a training record without ``mixed_precision`` (an older version's) was trained with.
DEFAULT_MIXED_PRECISION = "off"
#: the run's training switches a resume must keep, with what a record without them (an
#: older version's) was trained with.
TRAINING_SWITCHES = {"mixed_precision": DEFAULT_MIXED_PRECISION, "projection": True,
                     "weighted_gradients": False, "adversarial": "none",
                     "adversarial_epsilon": None}


def _switches(get):
    """:data:`TRAINING_SWITCHES` from ``get(name)`` (``None``: the default);
    ``adversarial_epsilon`` only counts with adversarial training."""
    values = {}
    for name, default in TRAINING_SWITCHES.items():
        value = get(name)
        values[name] = default if value is None else value
    if values["adversarial"] == "none":
        values["adversarial_epsilon"] = None
    return values


def record_fields(config):
    """The fields of ``config`` (a :class:`~dcnet_keras.training.config.RunConfig` or its
    fields) that define the run, flattened: model, options, dataset, recipe, augmentation,
    mixed precision (``"off"`` when ``config`` has none)."""
    get = config.get if isinstance(config, dict) else lambda k: getattr(config, k)
    model = dataclasses.asdict(get("model"))
    options = {k: list(v) if isinstance(v, tuple) else v
               for k, v in dict(model.pop("options")).items()}
    recipe = dataclasses.asdict(get("recipe"))
    fields = dict(model, **options, dataset=get("dataset"), augmentation=get("augmentation"))
    fields.update({k: list(v) if isinstance(v, tuple) else v for k, v in recipe.items()
                   if k in FIXED_RECIPE_FIELDS})
    fields.update(_switches(config.get if isinstance(config, dict)
                            else lambda k: getattr(config, k, None)))
    return fields


def write_run_record(model_dir, config):
    """``model_spec.json`` with the model, the dataset and the run's recipe."""
    extra = dict(recipe={k: list(v) if isinstance(v, tuple) else v
                         for k, v in dataclasses.asdict(config.recipe).items()},
                 augmentation=config.augmentation, run=config.name,
                 **_switches(lambda k: getattr(config, k, None)))
    return write_model_spec(model_dir, config.model, config.dataset, extra=extra)


def stored_fields(model_dir):
    """The flattened fields of ``<model_dir>/model_spec.json``, or ``None`` without one."""
    path = os.path.join(model_dir, SPEC_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            stored = json.load(f)
        model = dict(stored["model"])
        options = dict(model.pop("options") or {})
        fields = dict(model, **options, dataset=stored.get("dataset"))
        if "recipe" in stored:
            fields["augmentation"] = stored.get("augmentation")
            fields.update({k: v for k, v in stored["recipe"].items()
                           if k in FIXED_RECIPE_FIELDS})
            fields.update(_switches(stored.get))
        return fields
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"--model_dir: cannot read {path} ({type(error).__name__}: {error}); "
                         "move it away to resume without the check") from None


def check_resume(model_dir, config_fields):
    """Raise a one-line ValueError at the first field where the flags contradict the stored
    run.  Returns ``False`` when the folder has no record (a run of an older version)."""
    stored = stored_fields(model_dir)
    if stored is None:
        return False
    given = json.loads(json.dumps(record_fields(config_fields)))  # tuples as JSON has them
    for key, value in stored.items():
        if key in given and given[key] != value:
            raise ValueError(
                f"{FLAGS.get(key, key)}: {model_dir} holds a run with {key} {value!r}, "
                f"received {given[key]!r} (resume with the same flags, or start afresh with "
                f"--no-resume or another --model_dir)")
    return True
