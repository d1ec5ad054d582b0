"""Running one table: every cell's training and evaluation, skipping what is done.

:class:`Experiment` trains each :class:`~dcnet_keras.experiments.tables.Training` a table
needs once (:mod:`dcnet_keras.experiments.runs`), evaluates every cell and returns
``{cell key: value}``: a test error or an accuracy in percent, or ``"N/C"``.  Tables 7 and
8 evaluate their models under attack (:mod:`dcnet_keras.attacks`): white-box images are
crafted on the model itself, black-box ones on
:func:`~dcnet_keras.experiments.tables.black_box_source`; every attack uses the same
first test images (``Scale.attack_images``), and the ``none`` column is the clean
accuracy on them.
"""

import os
import time

from dcnet_keras.experiments import runs
from dcnet_keras.experiments.tables import ACCURACY, NOT_CONVERGED, black_box_source


class Experiment:
    """One table at one scale in ``out``.

    ``source`` / ``data_dir``: the data (default: at a scale with synthetic sizes and no
    ``data_dir``, the synthetic set; else ``auto``, which reads ``data_dir`` or downloads
    through tfds); ``attack``: ``dict(epsilon, step, iterations)``; ``say``: where progress
    lines go.
    """

    def __init__(self, table, scale, out, source=None, data_dir=None, repo_root=None,
                 attack=None, say=print):
        from dcnet_keras.attacks import (DEFAULT_BIM_ITERATIONS, DEFAULT_BIM_STEP,
                                         DEFAULT_EPSILON)

        self.table, self.scale, self.out = table, scale, os.path.abspath(out)
        self.source, self.data_dir = source, data_dir
        self.repo_root = repo_root or os.getcwd()
        self.attack = dict(epsilon=DEFAULT_EPSILON, step=DEFAULT_BIM_STEP,
                           iterations=DEFAULT_BIM_ITERATIONS, **(attack or {}))
        self.say = say
        self._data, self._test_images, self._attack_batches = {}, {}, {}
        self._models, self._results = {}, {}

    # --- data ---------------------------------------------------------------------------

    def describe_data(self, dataset_name):
        return self.data(dataset_name).description

    def data(self, dataset_name):
        """The opened DataSource of a registered dataset (once per experiment)."""
        if dataset_name not in self._data:
            from dcnet_keras.data.registry import get_dataset

            spec = get_dataset(dataset_name)
            if self.source is None and self.data_dir is None and self.scale.synthetic_sizes:
                from dcnet_keras.data.cifar import get_format, load_synthetic

                train, test = self.scale.synthetic_sizes
                self._data[dataset_name] = load_synthetic(get_format(dataset_name), train, test)
            else:
                self._data[dataset_name] = spec.open(self.source or "auto", self.data_dir,
                                                     self.repo_root)
        return self._data[dataset_name]

    def test_images(self, dataset_name):
        if dataset_name not in self._test_images:
            self._test_images[dataset_name] = sum(
                int(labels.shape[0]) for _, labels in self.data(dataset_name).test_dataset(1000))
        return self._test_images[dataset_name]

    def attack_batches(self, dataset_name, batch_size=100):
        """The first ``Scale.attack_images`` test images (all: ``None``), as NumPy batches."""
        if dataset_name not in self._attack_batches:
            from dcnet_keras.attack import attack_batches

            self._attack_batches[dataset_name] = list(attack_batches(
                self.data(dataset_name), batch_size, self.scale.attack_images))
        return self._attack_batches[dataset_name]

    # --- runs ---------------------------------------------------------------------------

    def result(self, training):
        """The run's result (trained now if it has none); cached."""
        run_id = training.run_id
        if run_id in self._results:
            return self._results[run_id]
        folder = runs.run_folder(self.out, training)
        result = runs.read_result(folder)
        if result is None:
            from dcnet_keras.data.registry import get_dataset

            dataset = get_dataset(training.dataset)
            self.say(f"==== {self.table.name}: training {run_id}")
            config = runs.run_config(training, self.scale, dataset, self.data(training.dataset),
                                     folder)
            result, model = runs.train(config, dataset.num_classes,
                                       self.test_images(training.dataset))
            result.update(run=run_id, scale=self.scale.name, attacks={})
            runs.write_result(folder, result)
            if model is not None:
                self._models[run_id] = model
        else:
            self.say(f"==== {self.table.name}: {run_id} finished before: skipped")
        self._results[run_id] = result
        return result

    def model(self, training):
        """The run's trained model: from this process, else from its checkpoints."""
        if training.run_id not in self._models:
            from dcnet_keras.export.loaders import load_model

            folder = os.path.join(runs.run_folder(self.out, training), "model")
            self._models[training.run_id] = load_model(folder)[0]
        return self._models[training.run_id]

    def _attacked(self, training, box, attack, source):
        """``{clean, adversarial, images}`` of ``training``'s model under ``attack``
        (computed once, stored in its result)."""
        settings = self.attack
        key = (f"{box}/{attack}/eps{settings['epsilon']:g}"
               + (f"/step{settings['step']:g}/it{settings['iterations']}" if attack == "bim"
                  else "") + (f"/from/{source.run_id}" if source is not None else ""))
        result = self.result(training)
        stored = result.setdefault("attacks", {})
        if key not in stored:
            from dcnet_keras.attacks import attack_accuracy

            started = time.time()

            def logits_fn(model):
                return lambda images: model(images, training=False)

            target = logits_fn(self.model(training))
            crafted_on = None if source is None else logits_fn(self.model(source))
            value = attack_accuracy(target, self.attack_batches(training.dataset), attack,
                                    settings["epsilon"], settings["step"],
                                    settings["iterations"], source_fn=crafted_on)
            stored[key] = dict(value, seconds=round(time.time() - started, 1))
            runs.write_result(runs.run_folder(self.out, training), result)
        return stored[key]

    # --- cells --------------------------------------------------------------------------

    def value(self, cell):
        """The cell's number in percent (test error or accuracy), or ``"N/C"``."""
        result = self.result(cell.training)
        if result["status"] == runs.NOT_CONVERGED:
            return NOT_CONVERGED
        if cell.attack is None:
            accuracy = result["test_accuracy"]
            return round(100.0 * (accuracy if self.table.measure == ACCURACY
                                  else 1.0 - accuracy), 2)
        box, attack = cell.attack
        source = black_box_source(cell)
        if source is not None and self.result(source)["status"] == runs.NOT_CONVERGED:
            return NOT_CONVERGED  # no images to attack with
        measured = self._attacked(cell.training, box, "fgsm" if attack == "none" else attack,
                                  source)
        return round(100.0 * measured["clean" if attack == "none" else "adversarial"], 2)
