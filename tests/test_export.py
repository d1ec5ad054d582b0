"""``dcnet_keras.export``: SavedModels for TF Serving of all three networks, reloaded in new
processes; the atomic folder write; which model the CLI flags name.

Small widths throughout. Reloads and ``saved_model_cli`` run in child processes (the ``e2e``
tier), so what is tested is the SavedModel on disk, not the objects of this process.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
if keras.backend.backend() != "tensorflow":
    pytest.skip("SavedModel export is TensorFlow's", allow_module_level=True)

from dcnet_keras import export  # noqa: E402
from dcnet_keras.data.imagenet_preprocessing import eval_preprocess  # noqa: E402
from dcnet_keras.models import build_model, resolve  # noqa: E402
from assertions import cli_error_line  # noqa: E402
from training_runs import save_training_checkpoint  # noqa: E402
from fixtures import MODELS, folder, manifest, npz, relative_error, requires_fixtures  # noqa: E402

CIFAR_ARCH = dict(variant="tanh_cos", widths=(4, 8, 16), units_per_stage=1)
CIFAR_CLASSES = 100
IMAGENET_WIDTHS = (4, 4, 8, 8)
IMAGENET_CLASSES = 10
# (preset, CLI flags, build_model options): tiny models of the other two networks, exported
# from training checkpoints through the CLI with a preset
IMAGENET_PRESET = ("imagenet", ["--widths", "4", "4", "8", "8", "--num_classes", "10"],
                   dict(widths=IMAGENET_WIDTHS, num_classes=IMAGENET_CLASSES))
CNN9_PRESET = ("cnn9_ball_cos", ["--widths", "4", "8", "8"], dict(widths=(4, 8, 8)))
OUTPUTS = ("logits", "probabilities", "classes", "top5_classes")
CHILD_ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")

# Run in a child process: load each SavedModel with tf.saved_model.load, call a signature on
# each input file, write every output to an .npz file.
SERVE_WORKER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    loaded = {}
    for job in json.load(open(sys.argv[1])):
        model = loaded.setdefault(job["dir"], tf.saved_model.load(job["dir"]))
        signature = model.signatures[job["signature"]]
        value = np.load(job["npy"], allow_pickle=True)  # encoded images: object arrays
        out = signature(**{job["input"]: tf.constant(value)})
        np.savez(job["out"], **{k: v.numpy() for k, v in out.items()})
    print("served", len(loaded), "models")
""")


def serve_in_child(jobs, tmp_path):
    """Run ``jobs`` (dicts: dir, signature, input, npy, out) in a new Python process."""
    spec = tmp_path / "jobs.json"
    spec.write_text(json.dumps(jobs))
    result = subprocess.run([sys.executable, "-c", SERVE_WORKER, str(spec)], env=CHILD_ENV,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return [dict(np.load(job["out"], allow_pickle=True)) for job in jobs]


def saved_model_cli(*args):
    executable = shutil.which("saved_model_cli")
    command = [executable] if executable else [sys.executable, "-m",
                                               "tensorflow.python.tools.saved_model_cli"]
    result = subprocess.run(command + list(args), env=CHILD_ENV, capture_output=True,
                            text=True, timeout=300)
    return result


def cifar_model(zero_debias=True):
    model = build_model("cifar_resnet32", num_classes=CIFAR_CLASSES, zero_debias=zero_debias,
                        **CIFAR_ARCH)
    rng = np.random.default_rng(0)
    # training-mode forwards give the moving averages real values (debiased: the batch's)
    model(rng.uniform(0, 255, (16, 32, 32, 3)).astype(np.float32), training=True)
    return model


def trained_preset_model(preset, seed=0, **options):
    """``build_model(preset, **options)`` after a training-mode forward (non-zero moving
    averages; debiased, so they are the batch's statistics)."""
    model = build_model(preset, zero_debias=True, **options)
    shape = tuple(model.inputs[0].shape[1:])
    model(np.random.default_rng(seed).normal(0, 60, (2,) + shape).astype(np.float32),
          training=True)
    return model


def keras_logits(model, images):
    return model(tf.convert_to_tensor(images, tf.float32), training=False).numpy()


def check_outputs(out, logits, tolerance=1e-5):
    """Served outputs against the Keras model's logits (names, dtypes, shapes, values)."""
    assert set(OUTPUTS) <= set(out)
    assert relative_error(out["logits"], logits) <= tolerance
    n, k = logits.shape
    assert out["logits"].dtype == np.float32 and out["probabilities"].dtype == np.float32
    assert out["classes"].dtype == np.int64 and out["classes"].shape == (n,)
    assert out["top5_classes"].dtype == np.int64 and out["top5_classes"].shape == (n, min(5, k))
    np.testing.assert_allclose(out["probabilities"].sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(out["classes"], np.argmax(logits, -1))
    np.testing.assert_array_equal(out["top5_classes"][:, 0], out["classes"])
    top = np.take_along_axis(logits, out["top5_classes"], axis=1)
    assert np.all(np.diff(top, axis=1) <= 0)  # best first
    assert np.all(top[:, -1] >= np.sort(logits, -1)[:, -min(5, k)] - 1e-5 * np.abs(logits).max())


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A CIFAR and an ImageNet export, the inputs, and the Keras model's logits for them."""
    root = tmp_path_factory.mktemp("export")
    rng = np.random.default_rng(1)
    cifar = cifar_model()
    names = [f"class_{i}" for i in range(CIFAR_CLASSES)]
    cifar_dir = export.export_saved_model(cifar, root / "cifar", class_names=names)
    cifar.save(root / "cifar.keras")

    # the other two networks: training checkpoints, exported by the CLI with a preset
    preset, flags, options = IMAGENET_PRESET
    imagenet = trained_preset_model(preset, **options)
    save_training_checkpoint(imagenet, "imagenet_resnet18", root / "imagenet_run",
                             iterator=False)
    imagenet_dir = export.main([str(root / "imagenet_run"), "--out", str(root / "imagenet"),
                                "--version", "3", "--preset", preset] + flags)
    preset, flags, options = CNN9_PRESET
    cnn9 = trained_preset_model(preset, seed=2, **options)
    save_training_checkpoint(cnn9, "cnn9", root / "cnn9_run")
    shutil.copytree(root / "cnn9_run", root / "cnn9_run_with_spec")  # as a run writes it:
    export.write_model_spec(root / "cnn9_run_with_spec",
                            resolve(preset, zero_debias=True, **options), "cifar10")
    cnn9_dir = export.main([str(root / "cnn9_run"), "--out", str(root / "cnn9"),
                            "--preset", preset] + flags)

    cases = {}  # name -> (saved model dir, signature, input name, input, expected logits)
    for n in (1, 7):
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        cases[f"cifar_uint8_{n}"] = (cifar_dir, "serving_default", "images", images,
                                     keras_logits(cifar, images))
        png = np.array([tf.io.encode_png(image).numpy() for image in images], dtype=object)
        cases[f"cifar_png_{n}"] = (cifar_dir, "serving_bytes", "image_bytes", png,
                                   keras_logits(cifar, images))
        cases[f"cnn9_uint8_{n}"] = (cnn9_dir, "serving_default", "images", images,
                                    keras_logits(cnn9, images))
        cases[f"cnn9_png_{n}"] = (cnn9_dir, "serving_bytes", "image_bytes", png,
                                  keras_logits(cnn9, images))
        raw = rng.integers(0, 256, (n, 61 + n, 83, 3), dtype=np.uint8)  # any size
        cases[f"imagenet_uint8_{n}"] = (imagenet_dir, "serving_default", "images", raw,
                                        keras_logits(imagenet, eval_preprocess(raw)))
        pre = eval_preprocess(rng.integers(0, 256, (n, 300, 217, 3), dtype=np.uint8)).numpy()
        cases[f"imagenet_preprocessed_{n}"] = (imagenet_dir, "serving_preprocessed", "images",
                                               pre, keras_logits(imagenet, pre))
        jpegs = [tf.io.encode_jpeg(image).numpy() for image in raw]
        decoded = np.stack([tf.io.decode_jpeg(j, channels=3).numpy() for j in jpegs])
        cases[f"imagenet_jpeg_{n}"] = (imagenet_dir, "serving_bytes", "image_bytes",
                                       np.array(jpegs, dtype=object),
                                       keras_logits(imagenet, eval_preprocess(decoded)))
    return dict(root=root, cifar=cifar, cifar_dir=cifar_dir, imagenet_dir=imagenet_dir,
                cnn9=cnn9, cnn9_dir=cnn9_dir, cases=cases, names=names)


def test_export_writes_version_folder(exported):
    assert exported["cifar_dir"] == str(exported["root"] / "cifar" / "1")
    assert exported["imagenet_dir"] == str(exported["root"] / "imagenet" / "3")
    assert exported["cnn9_dir"] == str(exported["root"] / "cnn9" / "1")
    for path in (exported["cifar_dir"], exported["imagenet_dir"], exported["cnn9_dir"]):
        assert os.path.isfile(os.path.join(path, "saved_model.pb"))
        assert os.path.isdir(os.path.join(path, "variables"))
        # nothing half-written is left beside the version folder
        assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]


@pytest.mark.e2e
def test_reloaded_in_new_process_gives_keras_logits(exported, tmp_path):
    jobs, expected = [], []
    for name, (path, signature, input_name, value, logits) in exported["cases"].items():
        np.save(tmp_path / f"{name}.npy", value, allow_pickle=value.dtype == object)
        jobs.append(dict(dir=path, signature=signature, input=input_name,
                         npy=str(tmp_path / f"{name}.npy"), out=str(tmp_path / f"{name}.npz")))
        expected.append((name, logits))
    for (name, logits), out in zip(expected, serve_in_child(jobs, tmp_path)):
        check_outputs(out, logits)
        if name.startswith("cifar_"):  # exported with class names
            names = np.array(exported["names"])
            np.testing.assert_array_equal(out["class_name"].astype(str),
                                          names[out["classes"]])
            np.testing.assert_array_equal(out["top5_class_names"].astype(str),
                                          names[out["top5_classes"]])


@pytest.mark.e2e
def test_saved_model_cli_show_lists_signatures(exported):
    result = saved_model_cli("show", "--all", "--dir", exported["imagenet_dir"])
    assert result.returncode == 0, result.stderr
    text = result.stdout
    blocks = {}
    for block in text.split("signature_def[")[1:]:
        name = block.split("'")[1]
        blocks[name] = block
    assert {"serving_default", "serving_bytes", "serving_preprocessed"} <= set(blocks)
    expected_inputs = {"serving_default": ("images", "DT_UINT8"),
                       "serving_bytes": ("image_bytes", "DT_STRING"),
                       "serving_preprocessed": ("images", "DT_FLOAT")}
    for name, (input_name, dtype) in expected_inputs.items():
        block = blocks[name]
        assert f"inputs['{input_name}'] tensor_info:\n        dtype: {dtype}" in block, block
        for output, out_dtype in (("logits", "DT_FLOAT"), ("probabilities", "DT_FLOAT"),
                                  ("classes", "DT_INT64"), ("top5_classes", "DT_INT64")):
            assert f"outputs['{output}'] tensor_info:\n        dtype: {out_dtype}" in block
        assert "tensorflow/serving/predict" in block

    cifar = saved_model_cli("show", "--dir", exported["cifar_dir"], "--tag_set", "serve")
    assert cifar.returncode == 0, cifar.stderr
    assert "serving_default" in cifar.stdout and "serving_bytes" in cifar.stdout
    assert "serving_preprocessed" not in cifar.stdout


@pytest.mark.e2e
def test_saved_model_cli_run_gives_keras_classes(exported, tmp_path):
    path, _, _, images, logits = exported["cases"]["cifar_uint8_7"]
    np.save(tmp_path / "images.npy", images)
    result = saved_model_cli("run", "--dir", path, "--tag_set", "serve", "--signature_def",
                             "serving_default", "--inputs", f"images={tmp_path / 'images.npy'}",
                             "--outdir", str(tmp_path / "out"))
    assert result.returncode == 0, result.stdout + result.stderr
    classes = np.load(tmp_path / "out" / "classes.npy")
    np.testing.assert_array_equal(classes, np.argmax(logits, -1))
    assert relative_error(np.load(tmp_path / "out" / "logits.npy"), logits) <= 1e-5

    # a wrong rank through the TF1 session path: a clear error, exit code != 0, no abort
    np.save(tmp_path / "bad.npy", images[0])
    bad = saved_model_cli("run", "--dir", path, "--tag_set", "serve", "--signature_def",
                          "serving_default", "--inputs", f"images={tmp_path / 'bad.npy'}")
    assert bad.returncode == 1, bad.stderr[-2000:]
    assert "InvalidArgumentError" in bad.stderr
    assert "input images must be a uint8 batch of RGB images [N, 32, 32, 3]" in bad.stderr


def _expect_invalid(call, *fragments):
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        call()
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_bad_inputs_raise_clear_errors_and_the_process_survives(exported):
    cifar = tf.saved_model.load(exported["cifar_dir"])
    default = cifar.signatures["serving_default"]
    images = np.zeros((2, 32, 32, 3), np.uint8)
    _expect_invalid(lambda: default(images=tf.constant(images, tf.float32)),
                    "expected to be a uint8 tensor but is a float tensor")
    for shape in [(32, 32, 3), (1, 2, 32, 32, 3), (1, 32, 32, 4), (1, 32, 32, 1),
                  (1, 31, 32, 3), (), (0, 32, 32, 3)]:
        _expect_invalid(lambda: default(images=tf.zeros(shape, tf.uint8)),
                        "serving_default: input images must be a uint8 batch of RGB images "
                        "[N, 32, 32, 3], N >= 1; received shape",
                        f"[{' '.join(map(str, shape))}]")
    as_bytes = cifar.signatures["serving_bytes"]
    _expect_invalid(lambda: as_bytes(image_bytes=tf.constant(b"not an image")[None]),
                    "Unknown image file format")
    big = tf.io.encode_png(np.zeros((40, 40, 3), np.uint8))
    _expect_invalid(lambda: as_bytes(image_bytes=big[None]),
                    "serving_bytes: input image_bytes must be encoded 32x32 images", "[40 40 3]")
    _expect_invalid(lambda: as_bytes(image_bytes=big), "must be a string vector [N]", "[]")
    _expect_invalid(lambda: as_bytes(image_bytes=tf.zeros([0], tf.string)), "N >= 1", "[0]")

    imagenet = tf.saved_model.load(exported["imagenet_dir"])
    raw = imagenet.signatures["serving_default"]
    _expect_invalid(lambda: raw(images=tf.zeros((1, 50, 60, 4), tf.uint8)),
                    "[N, H, W, 3], any N, H, W >= 1; received shape", "[1 50 60 4]")
    _expect_invalid(lambda: raw(images=tf.zeros((50, 60, 3), tf.uint8)), "[50 60 3]")
    _expect_invalid(lambda: raw(images=tf.zeros((1, 0, 60, 3), tf.uint8)), "[1 0 60 3]")
    pre = imagenet.signatures["serving_preprocessed"]
    _expect_invalid(lambda: pre(images=tf.zeros((1, 224, 224, 3), tf.uint8)),
                    "expected to be a float tensor")
    _expect_invalid(lambda: pre(images=tf.zeros((1, 256, 256, 3))),
                    "serving_preprocessed: input images must be a float32 batch of mean-subtracted "
                    "RGB images [N, 224, 224, 3], N >= 1; received shape", "[1 256 256 3]")

    # still serving
    assert default(images=tf.constant(images))["classes"].shape == (2,)
    # the Keras-style `serve` function (model input -> logits), as evaluate.py uses it
    np.testing.assert_allclose(
        cifar.serve(tf.constant(images, tf.float32)).numpy(),
        keras_logits(exported["cifar"], images), rtol=0,
        atol=1e-5 * np.abs(keras_logits(exported["cifar"], images)).max())


# --------------------------------------------------------------------------- refusals


def test_refuses_untrained_model(tmp_path):
    model = build_model("cifar_resnet32", num_classes=10, widths=(4, 8, 16),
                        units_per_stage=1)  # moving averages all 0
    with pytest.raises(export.ExportError, match="looks untrained: all .* moving averages"):
        export.export_saved_model(model, tmp_path / "m")
    assert not (tmp_path / "m" / "1").exists()
    path = export.export_saved_model(model, tmp_path / "m", allow_untrained=True)
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))


def test_refuses_unbuilt_model(tmp_path):
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(10)

        def call(self, x):
            return self.dense(keras.ops.mean(x, axis=(1, 2)))

    with pytest.raises(export.ExportError, match="never built nor loaded"):
        export.export_saved_model(Net(), tmp_path / "m")


def test_refuses_bad_arguments(exported, tmp_path):
    model = exported["cifar"]
    with pytest.raises(export.ExportError, match="already exists"):
        export.export_saved_model(model, exported["root"] / "cifar")
    with pytest.raises(export.ExportError, match="version: expected a positive integer"):
        export.export_saved_model(model, tmp_path, version=0)
    with pytest.raises(export.ExportError, match="takes \\[N, 224, 224, 3\\] images"):
        export.export_saved_model(model, tmp_path, kind="imagenet")
    with pytest.raises(export.ExportError, match="100 classes but 3 names"):
        export.export_saved_model(model, tmp_path, class_names=["a", "b", "c"])
    assert not any(tmp_path.iterdir())


def test_overwrite_replaces_version(tmp_path):
    model = cifar_model(zero_debias=False)
    export.export_saved_model(model, tmp_path)
    path = export.export_saved_model(model, tmp_path, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["1"] and os.path.isfile(
        os.path.join(path, "saved_model.pb"))


# --------------------------------------------------------------------------- CLI


def cli_error(argv):
    return cli_error_line(export.main, argv)


def test_cli_keras_file(exported, tmp_path):
    path = export.main([str(exported["root"] / "cifar.keras"), "--out", str(tmp_path / "s"),
                        "--version", "2"])
    assert path == str(tmp_path / "s" / "2")
    loaded = tf.saved_model.load(path)
    _, _, _, images, logits = exported["cases"]["cifar_uint8_1"]
    out = loaded.signatures["serving_default"](images=tf.constant(images))
    check_outputs({k: v.numpy() for k, v in out.items()}, logits)


def test_cli_training_checkpoint(tmp_path):
    """A checkpoint as a training run writes it: model, optimizer, iterator, next_iteration."""
    model = cifar_model(zero_debias=False)
    save_training_checkpoint(model, "cifar_resnet32", tmp_path / "run")
    arch = ["--variant", "tanh_cos", "--widths", "4", "8", "16", "--units_per_stage", "1"]
    path = export.main([str(tmp_path / "run"), "--out", str(tmp_path / "serving")] + arch)
    images = np.random.default_rng(5).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    out = tf.saved_model.load(path).signatures["serving_default"](images=tf.constant(images))
    check_outputs({k: v.numpy() for k, v in out.items()}, keras_logits(model, images))

    # wrong architecture: refused (never a model with fresh weights), one line
    message = cli_error([str(tmp_path / "run"), "--out", str(tmp_path / "x"), "--variant",
                         "tanh_cos", "--widths", "4", "8", "32", "--units_per_stage", "1"])
    assert "does not fit a 'tanh_cos' model with widths (4, 8, 32)" in message
    message = cli_error([str(tmp_path / "run"), "--out", str(tmp_path / "x"), "--variant",
                         "tanh_cos", "--widths", "4", "8", "16", "--units_per_stage", "2"])
    assert "does not fit" in message and "2 units per stage" in message
    assert "widths: expected 3 positive integers" in cli_error(
        [str(tmp_path / "run"), "--out", str(tmp_path / "x"), "--widths", "4", "8"])
    message = cli_error([str(tmp_path / "run"), "--out", str(tmp_path / "x"), "--tf1"] + arch)
    assert "drop --tf1" in message
    assert not (tmp_path / "x").exists()


def test_cli_errors_are_one_line(tmp_path):
    missing = cli_error([str(tmp_path / "nothing"), "--out", str(tmp_path / "o")])
    assert missing.startswith("error: model: nothing at") and "nothing" in missing
    assert "version: expected a positive integer" in cli_error(
        [str(tmp_path), "--out", str(tmp_path / "o"), "--version", "0"])
    assert "no checkpoint at" in cli_error([str(tmp_path), "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit) as info:  # argparse: usage error, exit code 2
        export.main([str(tmp_path)])
    assert info.value.code == 2


@requires_fixtures
def test_cli_errors_for_original_checkpoints(tmp_path):
    ckpt = os.path.join(folder("tanh_cos", "long"), "model.ckpt")
    # without --tf1: a name-based checkpoint is recognised
    assert "pass --tf1" in cli_error([ckpt, "--out", str(tmp_path / "o"), "--variant",
                                      "tanh_cos", "--widths", "8", "16", "32",
                                      "--units_per_stage", "2"])
    # wrong widths: the loader's mismatch, on one line
    message = cli_error([ckpt, "--tf1", "--out", str(tmp_path / "o"), "--variant",
                         "tanh_cos", "--widths", "8", "16", "64", "--units_per_stage", "2"])
    assert "does not fit model" in message and "more)" in message
    # the ImageNet network needs 4 widths
    assert "widths: expected 4 positive integers" in cli_error(
        [ckpt, "--tf1", "--out", str(tmp_path / "o"), "--variant", "imagenet", "--widths",
         "8", "16", "32"])
    assert not (tmp_path / "o").exists()


@pytest.mark.e2e
def test_cli_process_exit_code_and_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "dcnet_keras.export",
                             str(tmp_path / "missing.keras"), "--out", str(tmp_path / "o")],
                            env=CHILD_ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert lines == [f"error: model: nothing at '{tmp_path / 'missing.keras'}' (expected a "
                     ".keras file, a model_dir, a checkpoint folder or a checkpoint prefix)"]


# --------------------------------------------------------------------------- TF1 fixtures


@pytest.mark.e2e
@requires_fixtures
def test_every_long_fixture_exports_and_serves_its_logits(tmp_path):
    jobs, expected = [], []
    for model in MODELS:
        info = manifest(model, "long")
        oracle = npz(model, "long", "oracle.npz")
        widths = info["widths"].split(",")
        arch = ["--variant", model, "--widths", *widths, "--num_classes", str(info["n_class"])]
        if model != "imagenet":
            arch += ["--units_per_stage", str(info["units"])]
        path = export.main([os.path.join(folder(model, "long"), "model.ckpt"), "--tf1",
                            "--out", str(tmp_path / model)] + arch)
        if model == "imagenet":  # the network's own input: mean-subtracted 224x224 crops
            signature, value = "serving_preprocessed", oracle["images"]
        else:
            signature, value = "serving_default", oracle["images_uint8"]
        np.save(tmp_path / f"{model}.npy", value)
        jobs.append(dict(dir=path, signature=signature, input="images",
                         npy=str(tmp_path / f"{model}.npy"), out=str(tmp_path / f"{model}.npz")))
        expected.append(oracle["logits_eval"])
    for job, logits, out in zip(jobs, expected, serve_in_child(jobs, tmp_path)):
        error = relative_error(out["logits"], logits)
        assert error <= 1e-4, (job["dir"], error)
        np.testing.assert_array_equal(out["classes"], np.argmax(logits, -1))


# --------------------------------------------------------------------------- presets, networks


def test_cli_cnn9_checkpoint_refusals(exported, tmp_path):
    run = str(exported["root"] / "cnn9_run")
    out = ["--out", str(tmp_path / "x")]
    message = cli_error([run] + out + ["--preset", "cnn9_ball_cos", "--widths", "4", "8", "16"])
    assert ("does not fit a 'ball_cos' model with widths (4, 8, 16) (network cnn9, 10 classes, "
            "fc_width=256, relu=True)") in message
    assert "relu=False" in cli_error([run] + out + ["--preset", "cnn9_ball_cos", "--widths",
                                                    "4", "8", "8", "--no_relu"])
    assert "no batch norm" in cli_error([run] + out + ["--preset", "cnn9_ball_cos", "--widths",
                                                       "4", "8", "8", "--no_bn"])
    assert "units_per_stage: network 'cnn9' has no such option" in cli_error(
        [run] + out + ["--preset", "cnn9_ball_cos", "--units_per_stage", "2"])
    assert "is a 'cnn9' model, received 'cifar_resnet32'" in cli_error(
        [run] + out + ["--preset", "cnn9_ball_cos", "--network", "cifar_resnet32"])
    assert "unknown network or preset 'resnet50'" in cli_error([run] + out + ["--network",
                                                                             "resnet50"])
    assert "is a SavedModel (already exported)" in cli_error([exported["cnn9_dir"]] + out)
    assert not (tmp_path / "x").exists()


def test_stored_model_spec_names_the_model_and_refuses_other_flags(exported, tmp_path):
    """ball_cos and tanh_cos have the same weights: only model_spec.json tells them apart."""
    run = exported["root"] / "cnn9_run_with_spec"
    images = np.random.default_rng(8).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    for path in (run, run / "checkpoints", run / "checkpoints" / "ckpt-6"):
        model, kind = export.load_training_checkpoint(str(path))  # no spec: the stored one
        assert kind == "cifar" and model.name == "cnn9_ball_cos"
        np.testing.assert_array_equal(keras_logits(model, images),
                                      keras_logits(exported["cnn9"], images))
    out = ["--out", str(tmp_path / "x")]
    message = cli_error([str(run)] + out + ["--preset", "cnn9_tanh_cos", "--widths", "4", "8",
                                            "8"])
    assert "with magnitude 'tanh'" in message and "'ball'" in message
    assert "model_spec.json" in message
    message = cli_error([str(run)] + out + ["--variant", "cnn9_ball_cos", "--num_classes", "7"])
    assert "num_classes 7" in message and "has 10" in message
    # without the file, a tanh_cos model restores the ball_cos weights: the checkpoint
    # cannot tell (which is why runs write model_spec.json)
    model, _ = export.load_training_checkpoint(str(exported["root"] / "cnn9_run"),
                                               resolve("cnn9_tanh_cos", widths=(4, 8, 8)))
    assert model.name == "cnn9_tanh_cos"
    with pytest.raises(export.ExportError, match="has no model_spec.json: name its model"):
        export.load_training_checkpoint(str(exported["root"] / "cnn9_run"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "model_spec.json").write_text("{not json")
    shutil.copytree(run / "checkpoints", tmp_path / "bad" / "checkpoints")
    with pytest.raises(export.ExportError, match="cannot read .*model_spec.json"):
        export.load_training_checkpoint(str(tmp_path / "bad"))


def test_model_spec_file_round_trip(tmp_path):
    import json

    spec = resolve("cnn9_sphere_cos", widths=(4, 8, 8), relu=False, num_classes=7)
    path = export.write_model_spec(tmp_path / "run", spec, "cifar10")
    assert os.listdir(tmp_path / "run") == ["model_spec.json"]
    stored = json.loads(open(path, encoding="utf-8").read())
    assert stored["format"] == 1 and stored["dataset"] == "cifar10"
    assert stored["model"]["network"] == "cnn9" and stored["model"]["variant"] == "sphere_cos"
    assert stored["model"]["options"] == {"widths": [4, 8, 8], "fc_width": 256, "relu": False}
    assert stored["model"]["num_classes"] == 7
    assert export.read_model_spec(tmp_path / "run") == (spec, "cifar10")
    assert export.read_model_spec(tmp_path) == (None, None)


def parsed_spec(*flags):
    from dcnet_keras.model_flags import model_spec

    return model_spec(export.build_parser().parse_args(["m", "--out", "o", *flags]),
                      default="tanh_cos")


@pytest.mark.parametrize("flags,network,variant,classes,options", [
    # the documented shorthand: --variant alone
    ([], "cifar_resnet32", "tanh_cos", 100, dict(widths=(96, 192, 384), units_per_stage=5)),
    (["--variant", "ball_cos", "--widths", "4", "8", "16"], "cifar_resnet32", "ball_cos", 100,
     dict(widths=(4, 8, 16), units_per_stage=5)),
    (["--variant", "log_sqcos", "--units_per_stage", "2"], "cifar_resnet32", "log_sqcos", 100,
     dict(widths=(96, 192, 384), units_per_stage=2)),
    (["--variant", "imagenet", "--widths", "128", "256", "512", "1024"], "imagenet_resnet18",
     "tanh_cos", 1000, dict(widths=(128, 256, 512, 1024))),
    (["--variant", "cnn9_sphere_cos"], "cnn9", "sphere_cos", 10,
     dict(widths=(128, 192, 256), fc_width=256, relu=True)),
    # the registry's flags
    (["--preset", "cnn9_tanh_cos", "--variant", "ball_cos", "--no_relu", "--num_classes", "7"],
     "cnn9", "ball_cos", 7, dict(widths=(128, 192, 256), fc_width=256, relu=False)),
    (["--network", "cnn9", "--widths", "4", "8", "8"], "cnn9", "tanh_cos", 10,
     dict(widths=(4, 8, 8), fc_width=256, relu=True)),
    (["--network", "imagenet_resnet18", "--variant", "baseline"], "imagenet_resnet18",
     "baseline", 1000, dict(widths=(128, 256, 512, 1024))),
])
def test_flags_name_the_documented_models(flags, network, variant, classes, options):
    spec = parsed_spec(*flags)
    assert (spec.network, spec.variant, spec.num_classes) == (network, variant, classes)
    assert dict(spec.options) == options


def test_no_bn_flag_and_variant_batch_norm():
    assert parsed_spec("--variant", "linear_sqcos_wo_bn").batch_norm is False
    assert parsed_spec("--variant", "tanh_cos").batch_norm is True
    assert parsed_spec("--network", "cnn9", "--no_bn").batch_norm is False


# --------------------------------------------------------------------------- atomic_folder


def test_atomic_folder_renames_into_place_and_replaces_only_with_overwrite(tmp_path):
    target = tmp_path / "a" / "1"
    with export.atomic_folder(target) as staging:
        assert os.path.isdir(staging) and not os.listdir(staging)
        assert os.path.dirname(staging) == str(tmp_path / "a") and not target.exists()
        open(os.path.join(staging, "f.txt"), "w").write("one")
    assert (target / "f.txt").read_text() == "one"
    assert os.listdir(tmp_path / "a") == ["1"]

    with pytest.raises(FileExistsError, match="already exists"):
        with export.atomic_folder(target):
            raise AssertionError("the block must not run")
    with export.atomic_folder(target, overwrite=True) as staging:
        assert (target / "f.txt").read_text() == "one"  # the old folder, until the block ends
        open(os.path.join(staging, "g.txt"), "w").write("two")
    assert sorted(os.listdir(target)) == ["g.txt"]
    assert os.listdir(tmp_path / "a") == ["1"]


def test_atomic_folder_leaves_target_as_it_was_when_the_block_fails(tmp_path):
    with pytest.raises(RuntimeError, match="half-way"):
        with export.atomic_folder(tmp_path / "new") as staging:
            open(os.path.join(staging, "part.txt"), "w").write("x")
            raise RuntimeError("half-way")
    assert os.listdir(tmp_path) == []
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "keep.txt").write_text("kept")
    with pytest.raises(RuntimeError):
        with export.atomic_folder(tmp_path / "old", overwrite=True):
            raise RuntimeError("half-way")
    assert os.listdir(tmp_path) == ["old"] and os.listdir(tmp_path / "old") == ["keep.txt"]
