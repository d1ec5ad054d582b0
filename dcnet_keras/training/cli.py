"""The training command line: ``python -m dcnet_keras.train`` and the original scripts.

    python -m dcnet_keras.train --network cnn9 --variant tanh_cos --dataset cifar10 --data_dir DIR
    python -m dcnet_keras.train --preset tanh_cos --source synthetic --max_steps 300

Everything is looked up in the registries: the model (``--preset`` or
``--network`` + ``--variant`` and the size flags, :mod:`dcnet_keras.model_flags`),
the data (``--dataset``; its format from ``--source``, by default whatever
``--data_dir`` holds, else tfds), the recipe (``--recipe``, default the preset's
or the network's; every number can be overridden by its flag).  The original
scripts (``dcnet_cifar100/<variant>/train_resnet.py``,
``dcnet_imagenet/train_DCNet.py``) are this CLI with the preset fixed and
their own flag names (``--dataset`` for the format), see :func:`script_parser`.
Bad input ends the process with one line, ``error: ...``, before any training.
"""

import argparse
import dataclasses
import os
import sys

from dcnet_keras.data.registry import DATASETS, get_dataset
from dcnet_keras.model_flags import add_model_flags, model_name, model_spec, positive
from dcnet_keras.presets import get_preset
from dcnet_keras.recipes import AUGMENTATIONS, RECIPES, get_recipe
from dcnet_keras.training.config import RunConfig, default_folders
from dcnet_keras.training.flags import RECIPE_FLAGS, add_recipe_flags, add_run_flags
from dcnet_keras.training.checkpoints import complete_checkpoints
from dcnet_keras.training.preflight import check_cluster, check_folder
from dcnet_keras.training.run_record import check_resume


def build_parser():
    """The generic parser of ``python -m dcnet_keras.train``."""
    parser = argparse.ArgumentParser(
        prog="python -m dcnet_keras.train",
        description="Train any registered network with any operator on any registered "
                    "dataset, with a registered recipe (python -m dcnet_keras.list).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_model_flags(parser)
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default=None, choices=DATASETS.names(),
                      help="default: the preset's, else the network's")
    data.add_argument("--source", default=None,
                      help="the data's format: cifar auto|binary|pickle|tfds|synthetic "
                           "(auto: what --data_dir holds, else <repo>/<the original's folder>, "
                           "else tfds, which downloads on first use; synthetic: a small "
                           "learnable set, offline); imagenet tfrecord|tfds (default: auto, "
                           "or the dataset's first)")
    data.add_argument("--data_dir", default=None, help="the data folder (for tfds its data_dir)")
    recipe = add_recipe_flags(parser)
    recipe.add_argument("--recipe", default=None, choices=RECIPES.names(),
                        help="default: the preset's, else the network's")
    recipe.add_argument("--augmentation", default=None, choices=AUGMENTATIONS,
                        help="training augmentation (default: the recipe's)")
    recipe.add_argument("--shuffle_buffer", type=positive(int), default=None,
                        help="examples in the shuffle buffer (default: the recipe's)")
    add_run_flags(parser, "<run name>")
    return parser


def script_parser(preset_name, prog, description, source_help, data_dir=None,
                  data_dir_help=None):
    """The parser of an original script: ``preset_name`` fixed, the format flag called
    ``--dataset``, every default shown as a number."""
    preset = get_preset(preset_name)
    recipe = get_recipe(preset.recipe)
    spec = get_dataset(preset.dataset)
    options = dict(preset.options)
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_recipe_flags(parser, recipe)
    add_run_flags(parser, preset_name)
    add = parser.add_argument
    add("--widths", type=positive(int), nargs=len(options["widths"]),
        default=list(options["widths"]), help="stage widths (small values for quick runs)")
    if "units_per_stage" in options:
        add("--units_per_stage", type=positive(int), default=options["units_per_stage"],
            help="residual units per stage")
    add("--dataset", dest="source", default=spec.sources[0], choices=spec.sources,
        help=source_help)
    add("--data_dir", default=data_dir, help=data_dir_help)
    if preset.dataset == "imagenet":
        add("--shuffle_buffer", type=positive(int), default=recipe.shuffle_buffer,
            help="records in the shuffle buffer (encoded JPEGs, ~110 kB each)")
        add("--num_classes", type=positive(int), default=None, help=argparse.SUPPRESS)
    # What the generic CLI's flags would hold, for the flags this script does not have.
    fixed = dict(preset=preset_name, network=None, variant=None, dataset=None, recipe=None,
                 augmentation=None, no_bn=False, no_relu=False, num_classes=None,
                 units_per_stage=None, shuffle_buffer=None, weighted=None)
    taken = {action.dest for action in parser._actions}
    parser.set_defaults(**{k: v for k, v in fixed.items() if k not in taken})
    return parser


def _run_name(args, spec, dataset):
    if getattr(args, "preset", None):
        return args.preset
    from dcnet_keras.models.registry import preset_of

    found = preset_of(spec, dataset)
    if found:
        return found
    parts = [spec.network, spec.variant]
    if not spec.batch_norm and not spec.variant.endswith("_wo_bn"):
        parts.append("wo_bn")
    if spec.options.get("relu") is False:
        parts.append("wo_relu")
    return "_".join(parts + [dataset])


def config_from_args(args, repo_root):
    """A :class:`RunConfig` from parsed flags: every check that needs no data or model."""
    from dcnet_keras.models.registry import lookup

    name = model_name(args)
    if name is None:
        raise ValueError("--preset / --network: name a preset or a network "
                         "(python -m dcnet_keras.list shows them)")
    preset, network = lookup(name)
    dataset_name = args.dataset or (preset.dataset if preset else network.default_dataset)
    dataset = get_dataset(dataset_name)
    if dataset.input_kind != network.input_kind:
        raise ValueError(f"--dataset: network {network.name!r} takes {network.input_kind} "
                         f"images, dataset {dataset_name!r} has {dataset.input_kind} images")
    spec = model_spec(args, num_classes=dataset.num_classes,
                      zero_debias=args.debias_moving_averages)
    if spec.num_classes < dataset.num_classes:
        raise ValueError(f"--num_classes: dataset {dataset_name!r} has {dataset.num_classes} "
                         f"classes, received {spec.num_classes}")
    recipe = get_recipe(args.recipe or (preset.recipe if preset else network.default_recipe))
    overrides = {field: getattr(args, field) for field in RECIPE_FLAGS
                 if getattr(args, field, None) is not None}
    if args.shuffle_buffer is not None:
        overrides["shuffle_buffer"] = args.shuffle_buffer
    recipe = dataclasses.replace(recipe, **overrides)
    augmentation = args.augmentation or recipe.augmentation
    if augmentation not in dataset.augmentations:
        raise ValueError(f"--augmentation: dataset {dataset_name!r} takes "
                         f"{', '.join(dataset.augmentations)}, received {augmentation!r}")
    run_name = getattr(args, "run_name", None) or _run_name(args, spec, dataset_name)
    model_dir, log_dir = default_folders(repo_root, run_name, args.model_dir, args.log_dir)
    source = args.source or ("auto" if "auto" in dataset.sources else dataset.sources[0])
    return dict(name=run_name, model=spec, dataset=dataset_name, recipe=recipe, augmentation=augmentation,
                model_dir=model_dir, log_dir=log_dir, input_kind=network.input_kind,
                strategy=args.strategy, seed=args.seed, deterministic=args.deterministic,
                resume=args.resume, keep_checkpoints=args.keep_checkpoints,
                export=not args.no_export, progress=args.progress,
                check_every=args.check_every, summary_every=args.summary_every,
                mixed_precision=args.mixed_precision, jit_compile=args.jit_compile,
                projection=args.projection, weighted_gradients=args.weighted_gradients,
                adversarial=args.adversarial, adversarial_epsilon=args.adversarial_epsilon), (
        dataset, source)


def train_from_args(args, repo_root):
    """Check the flags, open the data, train; a one-line ``error: ...`` on bad input."""
    import tensorflow as tf

    from dcnet_keras.training.loop import run

    repo_root = os.path.abspath(repo_root or os.getcwd())
    data = None
    try:
        fields, (dataset, source) = config_from_args(args, repo_root)
        check_folder(fields["model_dir"], "--model_dir")
        check_folder(fields["log_dir"], "--log_dir")
        check_cluster(fields["strategy"])
        if fields["resume"] and complete_checkpoints(
                os.path.join(fields["model_dir"], "checkpoints")) and not check_resume(
                fields["model_dir"], fields):
            print(f"warning: {fields['model_dir']} has checkpoints but no model_spec.json (a "
                  "run of an older version): resuming the model the flags describe; the "
                  "checkpoint must fit it", file=sys.stderr, flush=True)
        data = dataset.open(source, args.data_dir, repo_root)
        print(f"==== data: {data.description}", flush=True)
        return run(RunConfig(data=data, **fields))
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as error:
        if data is None:
            raise
        sys.exit(f"error: {data.explain(error)}")
    except (ValueError, FileNotFoundError) as error:  # DataError is a ValueError
        sys.exit(f"error: {error}")


def main(argv=None, repo_root=None):
    """``python -m dcnet_keras.train``; returns a :class:`~dcnet_keras.training.loop.RunResult`."""
    args = build_parser().parse_args(argv)
    return train_from_args(args, repo_root)
