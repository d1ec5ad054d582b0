"""What one training run is: :class:`RunConfig`, made from the command line by
:mod:`dcnet_keras.training.cli` (or built directly by users and tests)."""

import dataclasses
import os

from dcnet_keras.models.registry import ModelSpec
from dcnet_keras.recipes import Recipe


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """One run: the model, its data, its recipe (flag overrides applied) and its folders.

    ``name``: the run's name (``log/<name>``, ``model/<name>``, ``<name>.keras``);
    ``dataset``: its registry name; ``data``: the opened ``DataSource`` (:mod:`dcnet_keras.data.registry`);
    ``input_kind``: ``cifar`` or ``imagenet`` (the serving signatures).
    """

    name: str
    model: ModelSpec
    dataset: str
    data: object
    recipe: Recipe
    augmentation: str
    model_dir: str
    log_dir: str
    input_kind: str = "cifar"
    strategy: str = "auto"
    seed: int = 0
    deterministic: bool = False
    resume: bool = True
    keep_checkpoints: int = None
    export: bool = True
    progress: bool = True


def default_folders(repo_root, name, model_dir=None, log_dir=None):
    """``(model_dir, log_dir)``: the given ones, else ``<repo>/model/<name>``, ``<repo>/log/<name>``."""
    return (os.path.abspath(model_dir or os.path.join(repo_root, "model", name)),
            os.path.abspath(log_dir or os.path.join(repo_root, "log", name)))
