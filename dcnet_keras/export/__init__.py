"""Export a trained DCNet as a SavedModel for TensorFlow Serving (TensorFlow only).

    python -m dcnet_keras.export model/tanh_cos/tanh_cos.keras --out serving/tanh_cos
    python -m dcnet_keras.export model/tanh_cos --variant tanh_cos --out serving/tanh_cos
    python -m dcnet_keras.export path/model.ckpt --tf1 --variant imagenet \\
        --widths 128 256 512 1024 --out serving/imagenet

From Python::

    from dcnet_keras.export import export_saved_model, load_training_checkpoint
    model, kind = load_training_checkpoint("model/cnn9_tanh_cos", "cnn9_tanh_cos")
    export_saved_model(model, "serving/cnn9", kind=kind)

One module per job: :mod:`~dcnet_keras.export.signatures` (the serving
signatures and their outputs), :mod:`~dcnet_keras.export.checks` (what a model
must be to be exported), :mod:`~dcnet_keras.export.saved_model` (the write),
:mod:`~dcnet_keras.export.atomic` (write a folder beside its target and rename
it), :mod:`~dcnet_keras.export.loaders` (``.keras`` files, training and TF1
checkpoints, SavedModels), :mod:`~dcnet_keras.export.spec_file` (a run's
``model_spec.json``) and :mod:`~dcnet_keras.export.cli`.
"""

from dcnet_keras.export.atomic import atomic_folder
from dcnet_keras.export.checks import check_exportable
from dcnet_keras.export.cli import build_parser, main
from dcnet_keras.export.errors import ExportError
from dcnet_keras.export.loaders import (checkpoint_prefix, load_keras_file, load_model,
                                        load_original_checkpoint, load_saved_model,
                                        load_training_checkpoint)
from dcnet_keras.export.saved_model import export_saved_model
from dcnet_keras.export.signatures import KINDS
from dcnet_keras.export.spec_file import SPEC_FILE, read_model_spec, write_model_spec

__all__ = ["export_saved_model", "ExportError", "check_exportable", "atomic_folder",
           "load_keras_file", "load_training_checkpoint", "load_original_checkpoint",
           "load_saved_model", "load_model", "checkpoint_prefix", "KINDS", "build_parser",
           "main", "SPEC_FILE", "read_model_spec", "write_model_spec"]
