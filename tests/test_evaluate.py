"""``python -m dcnet_keras.evaluate``: top-1/top-5 of .keras files, SavedModels and checkpoints,
of every network, on CIFAR-10, CIFAR-100 and ImageNet-format data.

Each accuracy is checked against a NumPy top-k of the Keras model's own logits on the same
test images (or, for an original TF1 checkpoint, of the logits the TF1 code computed).
"""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
if keras.backend.backend() != "tensorflow":
    pytest.skip("SavedModels and checkpoints are TensorFlow's", allow_module_level=True)

from dcnet_keras import evaluate  # noqa: E402
from dcnet_keras.data.imagenet_preprocessing import eval_preprocess  # noqa: E402
from dcnet_keras.data.registry import get_dataset  # noqa: E402
from dcnet_keras.data.shard_writer import encode_jpeg, random_image, write_shards  # noqa: E402
from dcnet_keras.export import export_saved_model, write_model_spec  # noqa: E402
from dcnet_keras.models import build_model, resolve  # noqa: E402
from assertions import cli_error_line  # noqa: E402
from training_runs import save_training_checkpoint  # noqa: E402
from fixtures import folder as fixture_folder  # noqa: E402
from fixtures import manifest, npz, requires_fixtures  # noqa: E402

ARCH = ["--variant", "ball_cos", "--widths", "4", "8", "16", "--units_per_stage", "1"]
CNN9 = ["--preset", "cnn9_tanh_cos", "--widths", "4", "8", "8"]
IMAGENET = ["--preset", "imagenet", "--widths", "4", "4", "8", "8"]


def numpy_top_k(logits, labels, k):
    """Fraction of labels among the k largest logits (ties broken against the label)."""
    label_logit = logits[np.arange(len(labels)), labels]
    rank = np.sum(logits > label_logit[:, None], axis=1)
    return float(np.mean(rank < k))


def synthetic_test_split(dataset):
    """The synthetic source's test images and labels (what ``--source synthetic`` reads)."""
    data = get_dataset(dataset).open("synthetic")
    return data.test_images, data.test_labels


def keras_logits(model, images, batch=100):
    return np.concatenate([np.asarray(model(np.asarray(images[i:i + batch], np.float32),
                                            training=False))
                           for i in range(0, len(images), batch)])


def error_line(argv):
    return cli_error_line(evaluate.main, argv)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny CIFAR ResNet (100 classes) as .keras, model.export SavedModel and checkpoint."""
    folder = tmp_path_factory.mktemp("evaluate")
    model = build_model("cifar_resnet32", variant="ball_cos", num_classes=100,
                        widths=(4, 8, 16), units_per_stage=1)
    test_images, test_labels = synthetic_test_split("cifar100")
    model(test_images[:64].astype(np.float32), training=True)  # non-zero moving averages
    logits = keras_logits(model, test_images)
    expected = {k: numpy_top_k(logits, test_labels, k) for k in (1, 5)}
    model.save(folder / "m.keras")
    model.export(str(folder / "saved" / "1"), verbose=False)
    save_training_checkpoint(model, "cifar_resnet32", folder / "run")
    return folder, expected


@pytest.mark.parametrize("form", ["keras", "saved_model", "checkpoint"])
def test_evaluate_every_model_form(trained, form):
    folder, expected = trained
    target = {"keras": [str(folder / "m.keras")], "saved_model": [str(folder / "saved" / "1")],
              "checkpoint": [str(folder / "run")] + ARCH}[form]
    # "--dataset synthetic": the pre-registry spelling of "--source synthetic" (CIFAR-100)
    accuracy = evaluate.main(target + ["--dataset", "synthetic"])
    assert accuracy[1] == pytest.approx(expected[1], abs=1e-9)
    assert accuracy[5] == pytest.approx(expected[5], abs=1e-9)
    assert expected[5] >= expected[1]


def test_evaluate_cifar_resnet_checkpoint_by_preset_and_network(trained):
    folder, expected = trained
    for flags in (["--preset", "ball_cos", "--widths", "4", "8", "16", "--units_per_stage", "1"],
                  ["--network", "cifar_resnet32"] + ARCH):
        accuracy = evaluate.main([str(folder / "run"), "--dataset", "cifar100", "--source",
                                  "synthetic"] + flags)
        assert accuracy == pytest.approx(expected, abs=1e-9)


def test_evaluate_missing_model_is_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        evaluate.main([str(tmp_path / "nothing"), "--dataset", "synthetic"] + ARCH)
    assert str(info.value).startswith("error: model:") and "nothing" in str(info.value)


# --------------------------------------------------------------------------- CNN-9 on CIFAR-10


@pytest.fixture(scope="module")
def cnn9(tmp_path_factory):
    """A tiny cnn9_tanh_cos (10 classes): checkpoint, .keras and our SavedModel export."""
    folder = tmp_path_factory.mktemp("evaluate_cnn9")
    model = build_model("cnn9_tanh_cos", widths=(4, 8, 8))
    test_images, test_labels = synthetic_test_split("cifar10")
    model(test_images[:64].astype(np.float32), training=True)
    logits = keras_logits(model, test_images)
    expected = {k: numpy_top_k(logits, test_labels, k) for k in (1, 5)}
    save_training_checkpoint(model, "cnn9", folder / "run")
    shutil.copytree(folder / "run", folder / "run_with_spec")  # as a run writes it
    write_model_spec(folder / "run_with_spec", resolve("cnn9_tanh_cos", widths=(4, 8, 8)),
                     "cifar10")
    model.save(folder / "cnn9.keras")
    saved = export_saved_model(model, folder / "serving", kind="cifar")
    return dict(folder=folder, expected=expected, saved=saved)


@pytest.mark.parametrize("form", ["checkpoint", "stored_spec", "keras", "saved_model"])
def test_evaluate_cnn9_on_cifar10(cnn9, form):
    folder = cnn9["folder"]
    # a checkpoint's dataset comes from its preset or its model_spec.json (cifar10), the
    # model from the flags or model_spec.json; the other forms name the dataset
    argv = {"checkpoint": [str(folder / "run")] + CNN9,
            "stored_spec": [str(folder / "run_with_spec")],
            "keras": [str(folder / "cnn9.keras"), "--dataset", "cifar10"],
            "saved_model": [cnn9["saved"], "--dataset", "cifar10"]}[form]
    accuracy = evaluate.main(argv + ["--source", "synthetic", "--batch_size", "64"])
    assert accuracy[1] == pytest.approx(cnn9["expected"][1], abs=1e-9)
    assert accuracy[5] == pytest.approx(cnn9["expected"][5], abs=1e-9)
    assert 0 < cnn9["expected"][1] < cnn9["expected"][5] < 1  # a count, not a constant


def test_classes_or_architecture_that_do_not_fit_are_one_line_errors(cnn9, trained):
    folder = cnn9["folder"]
    message = error_line([str(folder / "cnn9.keras"), "--dataset", "cifar100", "--source",
                          "synthetic"])
    assert "the model has 10 classes but dataset 'cifar100' has 100" in message
    message = error_line([cnn9["saved"], "--source", "synthetic"])  # default: cifar100
    assert "10 classes but dataset 'cifar100' has 100" in message
    message = error_line([str(trained[0] / "m.keras"), "--dataset", "cifar10", "--source",
                          "synthetic"])
    assert "the model has 100 classes but dataset 'cifar10' has 10" in message
    # a checkpoint's model gets the dataset's classes: a 10-class checkpoint does not fit 100
    message = error_line([str(folder / "run"), "--dataset", "cifar100", "--source",
                          "synthetic"] + CNN9)
    assert "does not fit a 'tanh_cos' model with widths (4, 8, 8)" in message
    assert "network cnn9, 100 classes" in message
    message = error_line([str(folder / "run"), "--source", "synthetic", "--no_bn"] + CNN9)
    assert "does not fit" in message and "no batch norm" in message
    message = error_line([str(folder / "run"), "--source", "synthetic",
                          "--units_per_stage", "2"] + CNN9)
    assert "units_per_stage: network 'cnn9' has no such option" in message
    message = error_line([str(folder / "run_with_spec"), "--dataset", "cifar100", "--source",
                          "synthetic"])  # the stored model: 10 classes
    assert "the model has 10 classes but dataset 'cifar100' has 100" in message
    message = error_line([str(folder / "run_with_spec"), "--source", "synthetic", "--variant",
                          "cnn9_ball_cos", "--widths", "4", "8", "8"])
    assert "magnitude 'ball'" in message and "model_spec.json" in message
    message = error_line([str(folder / "run"), "--source", "nonsense"] + CNN9)
    assert "--source" in message and "'nonsense'" in message


def test_imagenet_sized_model_on_cifar_is_one_line_error(tmp_path):
    model = build_model("imagenet", widths=(4, 4, 8, 8), num_classes=10)
    model.save(tmp_path / "imagenet.keras")
    message = error_line([str(tmp_path / "imagenet.keras"), "--dataset", "cifar10",
                          "--source", "synthetic"])
    assert ("the model takes imagenet images [224, 224, 3] but dataset 'cifar10' has cifar "
            "images [32, 32, 3]") in message


# --------------------------------------------------------------------------- ImageNet shards


def test_evaluate_imagenet_checkpoint_on_tfrecord_shards(tmp_path):
    """A tiny imagenet preset model over slim shards (labels 1..1000) written by the test."""
    model = build_model("imagenet", widths=(4, 4, 8, 8))
    rng = np.random.default_rng(3)
    model(rng.normal(0, 60, (2, 224, 224, 3)).astype(np.float32), training=True)
    images = [random_image(40 + 7 * i, 90 - 5 * i, seed=i) for i in range(6)]
    decoded = [tf.io.decode_jpeg(encode_jpeg(image), channels=3) for image in images]
    logits = np.concatenate([np.asarray(model(eval_preprocess(d[None]), training=False))
                             for d in decoded])
    order = np.argsort(-logits, axis=1)
    ranks = [0, 2, 4, 5, 40, 999]  # label rank among the logits: top1 1/6, top5 3/6
    labels = np.array([order[i, r] for i, r in enumerate(ranks)])
    expected = {k: numpy_top_k(logits, labels, k) for k in (1, 5)}
    assert expected == {1: pytest.approx(1 / 6), 5: pytest.approx(3 / 6)}
    write_shards(tmp_path / "data", "train", images[:1], [1], 1)
    write_shards(tmp_path / "data", "validation", images, labels + 1, 2)  # slim: 1-based
    save_training_checkpoint(model, "imagenet_resnet18", tmp_path / "run")
    accuracy = evaluate.main([str(tmp_path / "run"), "--data_dir", str(tmp_path / "data"),
                              "--batch_size", "4"] + IMAGENET)
    assert accuracy == pytest.approx(expected, abs=1e-9)


# --------------------------------------------------------------------------- TF1 checkpoints


def write_cifar100_binary(folder, images, fine_labels):
    """``train.bin`` and ``test.bin`` (records: coarse byte, fine byte, 3072 channel-major
    bytes); the test file holds ``images``, the train file the first two of them."""
    os.makedirs(folder, exist_ok=True)
    rows = np.concatenate([np.zeros((len(images), 1), np.uint8),
                           np.asarray(fine_labels, np.uint8)[:, None],
                           images.transpose(0, 3, 1, 2).reshape(len(images), -1)], axis=1)
    rows.tofile(os.path.join(folder, "test.bin"))
    rows[:2].tofile(os.path.join(folder, "train.bin"))


@requires_fixtures
def test_evaluate_original_tf1_checkpoint_matches_tf1_logits(tmp_path):
    """``--tf1 --variant tanh_cos``: accuracy as the TF1 code's own logits give it."""
    info = manifest("tanh_cos", "long")
    oracle = npz("tanh_cos", "long", "oracle.npz")
    logits = oracle["logits_eval"].astype(np.float64)
    order = np.argsort(-logits, axis=1)
    ranks = [0, 0, 1, 3, 4, 5, 30, 99]  # top1 2/8, top5 5/8
    labels = np.array([order[i, r % logits.shape[1]] for i, r in enumerate(ranks)])
    # each label's logit stands clear of its neighbours in rank by far more than the port's
    # 1e-4 relative difference from TF1, so the ranks (and accuracies) cannot differ
    ranked = -np.sort(-logits, axis=1)
    for i, r in enumerate(ranks):
        neighbours = ranked[i, max(r - 1, 0):r + 2]
        margin = np.abs(np.delete(neighbours, min(r, 1)) - ranked[i, r]).min()
        assert margin > 1e-3 * np.abs(logits).max(), (i, r, margin)
    expected = {k: numpy_top_k(logits, labels, k) for k in (1, 5)}
    assert expected == {1: 2 / 8, 5: 5 / 8}
    write_cifar100_binary(tmp_path / "data", oracle["images_uint8"], labels)
    accuracy = evaluate.main([
        os.path.join(fixture_folder("tanh_cos", "long"), "model.ckpt"), "--tf1", "--variant",
        "tanh_cos", "--widths", *info["widths"].split(","), "--units_per_stage",
        str(info["units"]), "--data_dir", str(tmp_path / "data")])
    assert accuracy == pytest.approx(expected, abs=1e-9)


# --------------------------------------------------------------------------- the process


@pytest.mark.e2e
def test_process_exit_code_and_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dcnet_keras.evaluate", str(tmp_path / "missing.keras"),
         "--dataset", "cifar10", "--source", "synthetic"],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert lines == [f"error: model: nothing at '{tmp_path / 'missing.keras'}' (expected a "
                     ".keras file, a SavedModel folder, a model_dir or a checkpoint prefix)"]
