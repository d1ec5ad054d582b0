"""What one training run is: :class:`RunConfig`, made from the command line by
:mod:`dcnet_keras.training.cli` (or built directly by users and tests)."""

import dataclasses
import os

from dcnet_keras.models.registry import ModelSpec
from dcnet_keras.recipes import Recipe
from dcnet_keras.validation import grey_levels

#: ``--mixed_precision`` -> the Keras global dtype policy the model is built under
#: (``None``: the default, float32 throughout).
MIXED_PRECISION_POLICIES = {"off": None, "float16": "mixed_float16",
                            "bfloat16": "mixed_bfloat16"}
#: ``--adversarial`` choices (``fgsm``: the paper's adversarial training) and the default
#: strength of its FGSM images, in grey levels of the 0..255 input.
ADVERSARIAL_TRAINING = ("none", "fgsm")
DEFAULT_ADVERSARIAL_EPSILON = 8.0
#: ``--jit_compile`` settings (``auto``: on when TensorFlow sees a GPU).
JIT_COMPILE = ("auto", "on", "off")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """One run: the model, its data, its recipe (flag overrides applied) and its folders.

    ``name``: the run's name (``log/<name>``, ``model/<name>``, ``<name>.keras``);
    ``dataset``: its registry name; ``data``: the opened ``DataSource`` (:mod:`dcnet_keras.data.registry`);
    ``input_kind``: ``cifar`` or ``imagenet`` (the serving signatures);
    ``check_every``: the loss terms are read back and checked for non-finite values every
    this many iterations (and before every log line, summary, test, save and export);
    ``summary_every``: TensorBoard training scalars at the iterations ``i`` with
    ``i % summary_every == 0``;
    ``mixed_precision``: ``off``, ``float16`` (Keras policy ``mixed_float16``, loss scaling)
    or ``bfloat16`` (``mixed_bfloat16``), see :data:`MIXED_PRECISION_POLICIES`;
    ``jit_compile``: ``on``, ``off`` or ``auto`` (on when TensorFlow sees a GPU);
    ``projection``: the original's weight projection after updates 101, 201, ...
    (``False``: the paper's "standard gradients");
    ``weighted_gradients``: every decoupled filter's gradient times its norm
    (:mod:`dcnet_keras.filter_gradients`);
    ``adversarial``: ``none`` or ``fgsm`` (half of every batch replaced by FGSM images of
    ``adversarial_epsilon`` grey levels, :mod:`dcnet_keras.adversarial`).
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
    check_every: int = 10
    summary_every: int = 10
    mixed_precision: str = "off"
    jit_compile: str = "auto"
    projection: bool = True
    weighted_gradients: bool = False
    adversarial: str = "none"
    adversarial_epsilon: float = DEFAULT_ADVERSARIAL_EPSILON

    def __post_init__(self):
        for field in ("check_every", "summary_every"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field}: expected a positive integer, received {value!r}")
        if self.mixed_precision not in MIXED_PRECISION_POLICIES:
            raise ValueError(f"mixed_precision: expected one of "
                             f"{', '.join(MIXED_PRECISION_POLICIES)}, received "
                             f"{self.mixed_precision!r}")
        if self.adversarial not in ADVERSARIAL_TRAINING:
            raise ValueError(f"adversarial: expected one of {', '.join(ADVERSARIAL_TRAINING)}, "
                             f"received {self.adversarial!r}")
        grey_levels("adversarial_epsilon", self.adversarial_epsilon)
        if self.jit_compile not in JIT_COMPILE:
            raise ValueError(f"jit_compile: expected one of {', '.join(JIT_COMPILE)}, "
                             f"received {self.jit_compile!r}")


def default_folders(repo_root, name, model_dir=None, log_dir=None):
    """``(model_dir, log_dir)``: the given ones, else ``<repo>/model/<name>``, ``<repo>/log/<name>``."""
    return (os.path.abspath(model_dir or os.path.join(repo_root, "model", name)),
            os.path.abspath(log_dir or os.path.join(repo_root, "log", name)))
