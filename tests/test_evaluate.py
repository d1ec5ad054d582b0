"""``python -m dcnet_keras.evaluate``: top-1/top-5 of .keras files, SavedModels and checkpoints."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
if keras.backend.backend() != "tensorflow":
    pytest.skip("SavedModels and checkpoints are TensorFlow's", allow_module_level=True)

from dcnet_keras import evaluate  # noqa: E402
from dcnet_keras.data.cifar100 import synthetic_cifar100  # noqa: E402
from dcnet_keras.models import build_cifar_resnet  # noqa: E402

ARCH = ["--variant", "ball_cos", "--widths", "4", "8", "16", "--units_per_stage", "1"]


def numpy_top_k(logits, labels, k):
    """Fraction of labels among the k largest logits (ties broken against the label)."""
    label_logit = logits[np.arange(len(labels)), labels]
    rank = np.sum(logits > label_logit[:, None], axis=1)
    return float(np.mean(rank < k))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("evaluate")
    model = build_cifar_resnet("ball_cos", 100, (4, 8, 16), 1)
    _, _, test_images, test_labels = synthetic_cifar100()
    model(test_images[:64].astype(np.float32), training=True)  # non-zero moving averages
    logits = np.concatenate([np.asarray(model(test_images[i:i + 100].astype(np.float32)))
                             for i in range(0, len(test_images), 100)])
    expected = {k: numpy_top_k(logits, test_labels, k) for k in (1, 5)}
    model.save(folder / "m.keras")
    model.export(str(folder / "saved" / "1"), verbose=False)
    tf.train.Checkpoint(model=model).save(str(folder / "run" / "checkpoints" / "ckpt"))
    return folder, expected


@pytest.mark.parametrize("form", ["keras", "saved_model", "checkpoint"])
def test_evaluate_every_model_form(trained, form):
    folder, expected = trained
    target = {"keras": [str(folder / "m.keras")], "saved_model": [str(folder / "saved" / "1")],
              "checkpoint": [str(folder / "run")] + ARCH}[form]
    accuracy = evaluate.main(target + ["--dataset", "synthetic"])
    assert accuracy[1] == pytest.approx(expected[1], abs=1e-9)
    assert accuracy[5] == pytest.approx(expected[5], abs=1e-9)
    assert expected[5] >= expected[1]


def test_evaluate_missing_model_is_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        evaluate.main([str(tmp_path / "nothing"), "--dataset", "synthetic"] + ARCH)
    assert str(info.value).startswith("error: model:") and "nothing" in str(info.value)
