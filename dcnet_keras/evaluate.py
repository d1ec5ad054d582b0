"""Top-1 / top-5 accuracy of a trained CIFAR-100 model on the test set.

    python -m dcnet_keras.evaluate model/tanh_cos/tanh_cos.keras
    python -m dcnet_keras.evaluate model/tanh_cos/saved_model/1
    python -m dcnet_keras.evaluate model/tanh_cos --variant tanh_cos        # training checkpoints
    python -m dcnet_keras.evaluate model/tanh_cos/42499 --tf1 --variant tanh_cos  # original TF1

Every test image is counted once (inference mode: moving averages).
"""

import argparse
import os
import sys

import tensorflow as tf


def _load_predict(args):
    """``predict(images float32 [N,32,32,3]) -> logits`` for the model at ``args.model``,
    loaded as :mod:`dcnet_keras.export` loads models."""
    from dcnet_keras import export

    path = args.model
    if not (os.path.exists(path) or os.path.exists(path + ".index")):
        raise FileNotFoundError(f"model: nothing at {path!r} (expected a .keras file, a "
                                "SavedModel folder, a model_dir or a checkpoint prefix)")
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        loaded = tf.saved_model.load(path)
        serve = getattr(loaded, "serve", None) or loaded.signatures["serving_default"]
        def predict(x, loaded=loaded):  # keeps `loaded` alive
            outputs = serve(tf.constant(x))
            return outputs["logits"] if isinstance(outputs, dict) else outputs

        return predict
    if path.endswith(".keras"):
        model = export.load_keras_file(path)
    else:
        load = export.load_original_checkpoint if args.tf1 else export.load_training_checkpoint
        model, _ = load(path, args.variant, args.widths, args.units_per_stage)
    return lambda x: model(x, training=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("model", help=".keras file, SavedModel folder, a model_dir or "
                                      "checkpoint prefix of our runs, or (--tf1) of the original")
    parser.add_argument("--tf1", action="store_true", help="MODEL is an original TF1 checkpoint")
    parser.add_argument("--variant", default="tanh_cos", help="for checkpoints")
    parser.add_argument("--widths", type=int, nargs=3, default=[96, 192, 384])
    parser.add_argument("--units_per_stage", type=int, default=5)
    parser.add_argument("--dataset", default="auto",
                        choices=("auto", "binary", "pickle", "tfds", "synthetic"))
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--batch_size", type=int, default=100)
    args = parser.parse_args(argv)

    from dcnet_keras.data.cifar100 import DataError, load_cifar100, test_dataset
    from dcnet_keras.training.trainer import top_k_accuracies

    try:
        data = load_cifar100(args.dataset, args.data_dir,
                             default_binary_dir=os.path.join(os.getcwd(), "cifar-100-binary"))
        predict = _load_predict(args)
        accuracy, seen = top_k_accuracies(
            predict, test_dataset(data.test_images, data.test_labels, args.batch_size))
    except (DataError, ValueError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")
    print(f"top1={accuracy[1]:.4f}, top5={accuracy[5]:.4f} over {seen} test images "
          f"({data.source})")
    return accuracy


if __name__ == "__main__":
    main()
