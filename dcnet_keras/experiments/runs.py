"""One training run of an experiment, trained once and remembered: its folder, its config,
its result.

Every :class:`~dcnet_keras.experiments.tables.Training` lives in
``<out>/runs/<run_id>/`` (``model/``: the run's checkpoints and ``model_spec.json``;
``log/``: its log files and TensorBoard; ``result.json``: what it gave).  A run with a
``result.json`` is finished and never trained again; one without is trained through the
project's one training loop (:func:`dcnet_keras.training.loop.run`), which resumes from its
newest checkpoint.  A run whose loss becomes non-finite, or whose test accuracy is not
above chance (at most ``1/K + 2 sqrt((1/K)(1 - 1/K) / n)`` for ``K`` classes and ``n``
test images: within two standard errors of guessing), is recorded as not converged
(``N/C``, as the paper reports it).  Evaluations (the attacks) are added to the same
``result.json``, each once.  Every write is atomic.
"""

import dataclasses
import json
import math
import os
import time

from dcnet_keras.export.atomic import atomic_write_text
from dcnet_keras.recipes import get_recipe

RESULT_FILE = "result.json"
DONE, NOT_CONVERGED = "done", "N/C"


def run_folder(out, training):
    return os.path.join(out, "runs", training.run_id)


def read_result(folder):
    """The run's ``result.json`` as a dict, or ``None`` when it has none (not finished)."""
    path = os.path.join(folder, RESULT_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"--out: cannot read {path} ({type(error).__name__}: {error}); "
                         "remove it to run the cell again") from None


def write_result(folder, result):
    os.makedirs(folder, exist_ok=True)
    atomic_write_text(os.path.join(folder, RESULT_FILE),
                      json.dumps(result, indent=2, sort_keys=True) + "\n")


def chance_bound(num_classes, test_images):
    """``1/K + 2 sqrt((1/K)(1 - 1/K) / n)``: an accuracy at or below it is chance."""
    p = 1.0 / num_classes
    return p + 2.0 * math.sqrt(p * (1.0 - p) / max(test_images, 1))


def model_spec(training, scale, num_classes):
    """The :class:`~dcnet_keras.models.registry.ModelSpec` of ``training`` at ``scale``."""
    from dcnet_keras.models.registry import resolve

    options = dict(scale.size_options(training.network), **dict(training.options))
    return resolve(training.network, variant=training.variant, num_classes=num_classes,
                   batch_norm=training.batch_norm, zero_debias=scale.zero_debias,
                   conv_options=dict(training.conv_options), **options)


def run_config(training, scale, dataset, data, folder):
    """The :class:`~dcnet_keras.training.config.RunConfig` of ``training`` at ``scale``
    on the opened ``data`` (a DataSource of the registry's ``dataset``)."""
    from dcnet_keras.training.config import RunConfig

    recipe = get_recipe(scale.recipe(training.network))
    return RunConfig(
        name=training.run_id, model=model_spec(training, scale, dataset.num_classes),
        dataset=dataset.name, data=data, recipe=recipe, augmentation=recipe.augmentation,
        model_dir=os.path.join(folder, "model"), log_dir=os.path.join(folder, "log"),
        input_kind=dataset.input_kind, seed=training.seed, export=False, progress=False,
        projection=training.projection, weighted_gradients=training.weighted_gradients,
        adversarial=training.adversarial, adversarial_epsilon=training.adversarial_epsilon)


def train(config, num_classes, test_images):
    """Train (or resume) ``config``; returns ``(result dict, model or None)``."""
    from dcnet_keras.training.loop import DivergenceError, run
    from dcnet_keras.training.run_record import check_resume

    check_resume(config.model_dir, {field.name: getattr(config, field.name)
                                    for field in dataclasses.fields(config)})
    started = time.time()
    try:
        outcome = run(config)
    except DivergenceError as error:
        return dict(status=NOT_CONVERGED, reason=str(error), test_accuracy=None,
                    seconds=round(time.time() - started, 1)), None
    accuracy = float(outcome.test_accuracy)
    bound = chance_bound(num_classes, test_images)
    result = dict(status=DONE, test_accuracy=accuracy, test_images=test_images,
                  seconds=round(time.time() - started, 1), iterations=config.recipe.max_steps)
    if accuracy <= bound:
        result.update(status=NOT_CONVERGED,
                      reason=f"test accuracy {accuracy:.4f} is chance (at most {bound:.4f} "
                             f"for {num_classes} classes and {test_images} test images)")
    return result, outcome.model
