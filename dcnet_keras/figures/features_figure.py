"""The 2-D feature figure: CNN-9 with a two-unit last hidden layer, four operators.

CNN-9 (:mod:`dcnet_keras.models.cnn9`) with ``fc_width = 2`` (its last hidden layer
``fc6`` has 2 output channels) is trained on a 10-class set (CIFAR-10, or the synthetic
CIFAR-shaped set) for each of the variants ``baseline`` (plain convolutions),
``sphere_cos`` (``h = 1``, ``g = cos theta``), ``ball_cos`` (``h = min(|x|, rho)/rho``)
and ``tanh_cos`` (``h = tanh(|x|/rho)``).  For each model the test images' features
``fc6(x)`` (its 2 outputs, inference mode: the moving statistics) are drawn as a
scatter, one colour per class, the four models side by side; each panel's title gives
the model's final test accuracy.  With a decoupled ``fc6`` each feature is
``h(|x|) g(theta)`` and so lies in ``[-1, 1]`` for the three bounded magnitudes; the
baseline's are unbounded.

Training is the project's one loop (:func:`dcnet_keras.training.loop.run`) with the
``spherenet_cnn9`` recipe; each model has its own folders ``<work_dir>/model/<variant>``
(checkpoints, ``model_spec.json``) and ``<work_dir>/log/<variant>`` (``log_train.txt``,
``log_test.txt``: ``python -m dcnet_keras.figures curves <work_dir>/log/*`` draws them),
so a rerun resumes an interrupted run and skips a finished one ("already finished").

Presets: the experiment runners' scales (:mod:`dcnet_keras.experiments.scales`), so the
figure's runs are sized as the tables' are:

* ``tiny``: CNN-9 widths (8, 8, 8), the ``experiments_tiny`` recipe (60 iterations of
  batch 32), zero-debiased moving averages, by default on the synthetic set at the scale's
  sizes (a smoke test: the whole figure in well under a minute on 2 CPU cores; the
  features mean little);
* ``full``: the paper's widths (128, 192, 256) and the whole ``spherenet_cnn9`` recipe
  (64001 iterations of batch 128), by default on CIFAR-10.

The PNG is 16 x 4.5 inches at 100 dpi: 1600 x 450 pixels (:data:`FIGURE_SIZE_PIXELS`).

    python -m dcnet_keras.figures features --out features.png --preset tiny
    python -m dcnet_keras.figures features --out features.png --preset full --data_dir DIR
"""

import dataclasses
import os

import numpy as np

from dcnet_keras.figures import check_out, new_figure, pixel_size, require_matplotlib, save_png

FIGURE_SIZE_INCHES = (16.0, 4.5)
FIGURE_DPI = 100
#: ``(width, height)`` of the PNG.
FIGURE_SIZE_PIXELS = pixel_size(FIGURE_SIZE_INCHES, FIGURE_DPI)  # (1600, 450)

#: the models drawn, left to right.
VARIANTS = ("baseline", "sphere_cos", "ball_cos", "tanh_cos")
#: fc6's output channels: the 2-D features.
FEATURE_WIDTH = 2
#: the layer whose outputs are the features.
FEATURE_LAYER = "fc6"
NETWORK = "cnn9"
DEFAULT_DATASET = "cifar10"
NUM_CLASSES = 10
#: CIFAR-10's class names, by label (the legend for the real data).
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")


@dataclasses.dataclass(frozen=True)
class FeaturePreset:
    """How big the figure's runs are, read off an experiment scale (:func:`get_preset`).

    ``widths``: CNN-9's stage widths; ``recipe``: the registered recipe's name;
    ``source``: the default ``--source``; ``zero_debias``: zero-debiased moving averages;
    ``synthetic_sizes``: ``(train, test)`` images of the synthetic set.
    """

    name: str
    widths: tuple
    recipe: str
    source: str
    zero_debias: bool = False
    synthetic_sizes: tuple = None
    description: str = ""


#: CNN-9's own widths (a scale that does not size CNN-9 keeps them).
DEFAULT_WIDTHS = (128, 192, 256)


@dataclasses.dataclass
class FeaturesResult:
    """What :func:`features_figure` made: the PNG's ``path``; per variant its test
    ``features`` (float32 ``[N, 2]``), their ``labels`` (int ``[N]``), the final
    ``test_accuracy`` and the run's ``model_dir``."""

    path: str
    features: dict
    labels: dict
    test_accuracy: dict
    model_dirs: dict


def get_preset(name):
    """The :class:`FeaturePreset` of the experiment scale ``name`` (``tiny``, ``full``), or a
    one-line ValueError naming ``--preset``."""
    from dcnet_keras.experiments.scales import SCALES

    if name not in SCALES:
        raise ValueError(f"--preset: expected one of {', '.join(SCALES.names())}, received "
                         f"{name!r}")
    scale = SCALES.get(name)
    return FeaturePreset(
        name, widths=tuple(scale.size_options(NETWORK).get("widths", DEFAULT_WIDTHS)),
        recipe=scale.recipe(NETWORK), source="synthetic" if scale.synthetic_sizes else "auto",
        zero_debias=scale.zero_debias, synthetic_sizes=scale.synthetic_sizes,
        description=scale.description)


def check_dataset(name):
    """The registry's ``DatasetSpec`` of ``name``: a 10-class set of 32x32 images (else a
    one-line ValueError naming ``--dataset``)."""
    from dcnet_keras.data.registry import DATASETS

    if name not in DATASETS:
        raise ValueError(f"--dataset: expected a registered dataset ({', '.join(DATASETS.names())}), "
                         f"received {name!r}")
    spec = DATASETS.get(name)
    if spec.num_classes != NUM_CLASSES or spec.input_kind != "cifar":
        raise ValueError(f"--dataset: the feature figure needs a 10-class set of 32x32 images "
                         f"(CNN-9), received {name!r} ({spec.num_classes} classes, "
                         f"{spec.input_kind} images)")
    return spec


def model_spec(variant, preset):
    """The cnn9 :class:`~dcnet_keras.models.registry.ModelSpec` of ``variant`` with
    ``fc_width = 2`` at ``preset``'s widths (and its ``zero_debias``)."""
    from dcnet_keras.models.registry import resolve

    return resolve(NETWORK, variant=variant, num_classes=NUM_CLASSES, fc_width=FEATURE_WIDTH,
                   widths=preset.widths, zero_debias=preset.zero_debias)


def run_folders(work_dir, variant):
    """``(model_dir, log_dir)`` of ``variant``'s run: ``<work_dir>/model/<variant>`` and
    ``<work_dir>/log/<variant>`` (the layout of the training CLI's ``model/<name>``,
    ``log/<name>``)."""
    return (os.path.join(work_dir, "model", variant), os.path.join(work_dir, "log", variant))


def run_configs(preset, work_dir, dataset=DEFAULT_DATASET, data=None, seed=0):
    """``{variant: RunConfig}`` of the figure's runs: ``preset``'s recipe, the folders of :func:`run_folders`, no export, no progress
    bar.  ``data`` may be ``None`` until the runs start."""
    from dcnet_keras.recipes import get_recipe
    from dcnet_keras.training.config import RunConfig

    recipe = get_recipe(preset.recipe)
    configs = {}
    for variant in VARIANTS:
        model_dir, log_dir = run_folders(work_dir, variant)
        configs[variant] = RunConfig(
            name=f"features_{variant}", model=model_spec(variant, preset), dataset=dataset,
            data=data, recipe=recipe, augmentation=recipe.augmentation, model_dir=model_dir,
            log_dir=log_dir, input_kind="cifar", seed=seed, export=False, progress=False)
    return configs


def check_runs(configs):
    """Before any data is read: the folders can be written, and a folder that holds a
    run holds this one (:func:`dcnet_keras.training.run_record.check_resume`; one line
    naming what differs)."""
    from dcnet_keras.training.preflight import check_folder
    from dcnet_keras.training.run_record import check_resume

    for config in configs.values():
        check_folder(config.model_dir, "--work_dir")
        check_folder(config.log_dir, "--work_dir")
        try:
            check_resume(config.model_dir, config)
        except ValueError as error:
            what = str(error).split(" (resume with the same flags")[0]
            raise ValueError(f"--work_dir: {what} (the figure's runs at other settings need "
                             "another --work_dir, or that folder removed)") from None


def open_data(preset, dataset=DEFAULT_DATASET, source=None, data_dir=None, repo_root=None):
    """The ``DataSource`` of the figure: ``dataset`` from ``source`` (default the
    preset's); the synthetic set at the preset's sizes."""
    spec = check_dataset(dataset)
    source = source or preset.source
    if source == "synthetic" and preset.synthetic_sizes is not None:
        from dcnet_keras.data.cifar import get_format, load_synthetic

        train, test = preset.synthetic_sizes
        return load_synthetic(get_format(dataset), num_train=train, num_test=test)
    return spec.open(source, data_dir, os.path.abspath(repo_root or os.getcwd()))


def test_features(model, data, batch_size=100):
    """``(features [N, 2], labels [N])`` of ``data``'s test split: ``fc6``'s outputs in
    inference mode, flattened (``[N, 1, 1, 2]`` -> ``[N, 2]``)."""
    import keras
    import tensorflow as tf

    extractor = keras.Model(model.input, model.get_layer(FEATURE_LAYER).output)
    forward = tf.function(lambda images: extractor(images, training=False))
    features, labels = [], []
    for images, batch_labels in data.test_dataset(batch_size):
        out = keras.ops.convert_to_numpy(forward(images))
        features.append(np.reshape(out, (out.shape[0], -1)))
        labels.append(np.asarray(batch_labels))
    return np.concatenate(features).astype(np.float32), np.concatenate(labels)


def is_synthetic(data):
    """Whether ``data`` is the synthetic set (its description says so)."""
    return "synthetic" in str(getattr(data, "description", "")).lower()


def class_names(data):
    """The legend's names: CIFAR-10's for the real set, ``class k`` for a synthetic one."""
    if is_synthetic(data):
        return tuple(f"class {k}" for k in range(NUM_CLASSES))
    return CIFAR10_CLASSES


def draw(figure, features, labels, accuracies, names, title=None):
    """Draw one scatter per variant (``features[v]`` ``[N, 2]`` coloured by
    ``labels[v]``) on ``figure``, titled with ``accuracies[v]``; one legend for all."""
    axes_row = figure.subplots(1, len(VARIANTS))
    handles = []
    for axes, variant in zip(axes_row, VARIANTS):
        points, classes = features[variant], labels[variant]
        for k in range(NUM_CLASSES):
            chosen = classes == k
            handle = axes.scatter(points[chosen, 0], points[chosen, 1], s=5, alpha=0.7,
                                  color=f"C{k}", label=names[k], linewidths=0)
            if variant == VARIANTS[0]:
                handles.append(handle)
        axes.set_title(f"{variant} (test acc {accuracies[variant]:.3f})", fontsize=10)
        axes.set_xlabel("fc6 unit 1")
        axes.set_ylabel("fc6 unit 2")
        axes.grid(alpha=0.3)
        axes.tick_params(labelsize=8)
        axes.ticklabel_format(style="sci", scilimits=(-3, 4))
    figure.legend(handles, names, loc="center right", fontsize=8, markerscale=3,
                  frameon=False)
    if title:
        figure.suptitle(title, fontsize=10)
    # the layout inside the fixed canvas (room on the right for the legend); size unchanged
    figure.tight_layout(rect=(0.0, 0.0, 0.92, 1.0))
    return figure


def default_work_dir(out, preset, dataset, source):
    """``<out's folder>/features_runs/<preset>-<dataset>-<source>``."""
    return os.path.join(os.path.dirname(os.path.abspath(out)), "features_runs",
                        f"{preset}-{dataset}-{source}")


def features_figure(out, preset="tiny", data=None, work_dir=None, dataset=DEFAULT_DATASET,
                    source=None, data_dir=None, repo_root=None, seed=0):
    """Train (or resume, or reuse) the four CNN-9 models of ``preset`` and write their
    2-D test features to the PNG ``out`` (1600 x 450 pixels).

    ``data``: an opened ``DataSource`` of a 10-class set (its registry name ``dataset``),
    else opened from ``dataset``, ``source`` (default the preset's: ``synthetic`` for
    ``tiny``, ``auto`` for ``full``), ``data_dir`` and ``repo_root`` (where the default
    data folder is looked for; default the working folder).  ``work_dir``: the runs'
    folder (default :func:`default_work_dir`).  Every argument, folder and stored run (and
    that matplotlib is there) is checked before any data is read or model trained.  Returns a
    :class:`FeaturesResult`.
    """
    out = check_out(out)
    require_matplotlib()
    chosen = get_preset(preset)
    check_dataset(dataset)
    if data is None:
        source = source or chosen.source
    label = source if data is None else "given"
    work_dir = os.path.abspath(work_dir or default_work_dir(out, preset, dataset, label))
    configs = run_configs(chosen, work_dir, dataset, data, seed)
    check_runs(configs)
    if data is None:
        data = open_data(chosen, dataset, source, data_dir, repo_root)
        print(f"==== data: {data.description}", flush=True)
    from dcnet_keras.training.loop import run

    features, labels, accuracies, model_dirs = {}, {}, {}, {}
    for variant, config in configs.items():
        result = run(dataclasses.replace(config, data=data))
        features[variant], labels[variant] = test_features(
            result.model, data, config.recipe.test_batch or config.recipe.batch_size)
        accuracies[variant] = float(result.test_accuracy)
        model_dirs[variant] = config.model_dir
    figure = new_figure(FIGURE_SIZE_INCHES, FIGURE_DPI)
    steps = configs[VARIANTS[0]].recipe.max_steps
    draw(figure, features, labels, accuracies, class_names(data),
         title=f"CNN-9 with a 2-unit fc6: test features after {steps} iterations "
               f"({preset} preset, {'synthetic' if is_synthetic(data) else dataset})")
    path = save_png(figure, out, FIGURE_DPI)
    return FeaturesResult(path, features, labels, accuracies, model_dirs)
