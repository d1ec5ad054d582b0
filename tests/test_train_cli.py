"""``python -m dcnet_keras.train``, the generic training CLI over the registries.

Quick tier: the registries listed, the run configuration each set of flags makes (network,
dataset, recipe, folders), one-line errors for flags that do not fit together, and the tfds
code path of CIFAR-10 and CIFAR-100 trained and evaluated in-process under
``tfds.testing.mock_data``.  E2E tier (subprocesses): CNN-9 learning on a small CIFAR-10
folder in the real binary format written here, and the README's first command offline.
Expectations come from the issue and SPEC.md (log formats, recipe numbers), never from an
earlier output of the library.
"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from dcnet_keras.training import cli  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_LINE = re.compile(r"^====iteration_(\d+): fit=(\d+\.\d{4}), reg=(\d+\.\d{4}), "
                        r"orth=(\d+\.\d{4}), acc=(\d\.\d{4})$")
TEST_LINE = re.compile(r"^\+\+\+\+iteration_(\d+): test acc=(\d\.\d{4})$")
TINY_CNN9 = ["--widths", "4", "8", "8"]


def config(*argv, repo_root="/repo"):
    """The run fields (and (dataset, source)) that ``python -m dcnet_keras.train ARGV`` makes."""
    return cli.config_from_args(cli.build_parser().parse_args(list(argv)), repo_root)


def one_line_exit(capsys, argv, *fragments, repo_root=None):
    """``main(argv)`` ends with one ``error: ...`` line holding every fragment."""
    with pytest.raises(SystemExit) as info:
        cli.main(list(argv), repo_root=repo_root)
    message = info.value.code if isinstance(info.value.code, str) else capsys.readouterr().err
    lines = [line for line in str(message).strip().splitlines() if line.strip()]
    assert lines, message
    assert "Traceback" not in str(message)
    last = lines[-1]
    for fragment in fragments:
        assert fragment in last, (fragment, last)
    return last


# --------------------------------------------------------------------------------------
# The registries and the configuration the flags make


def test_list_shows_every_registered_name():
    from dcnet_keras.data.registry import DATASETS
    from dcnet_keras.list import catalog
    from dcnet_keras.models.registry import NETWORKS
    from dcnet_keras.presets import PRESETS
    from dcnet_keras.recipes import RECIPES

    listed = {line.split()[0] for line in catalog() if line.startswith("  ")}
    expected = {"cifar_resnet32", "imagenet_resnet18", "cnn9", "tanh_cos", "ball_cos",
                "seg_cos", "linear_cos", "linear_sqcos_wo_bn", "imagenet", "cifar10",
                "cifar100", "dcnet_cifar", "dcnet_imagenet", "spherenet_cnn9"}
    assert expected <= listed
    for registry in (DATASETS, NETWORKS, PRESETS, RECIPES):
        assert set(registry.names()) <= listed


def test_cnn9_defaults_are_the_spherenet_recipe_on_cifar10():
    fields, (dataset, source) = config("--network", "cnn9", "--variant", "tanh_cos")
    recipe = fields["recipe"]
    # SphereNet train_spherenet.py: Adam 1e-3, /10 at 34000 and 54000, i = 0..64000, batch
    # 128, test batch 100 every 500; its CIFAR-10 input is a random flip only.
    assert (recipe.optimizer, recipe.base_lr, recipe.drops, recipe.drop_factor) == (
        "adam", 1e-3, (34000, 54000), 0.1)
    assert (recipe.max_steps, recipe.batch_size, recipe.test_batch, recipe.eval_every) == (
        64001, 128, 100, 500)
    assert fields["augmentation"] == "flip"
    assert dataset.name == "cifar10" and source == "auto"
    assert fields["model"].num_classes == 10 and fields["input_kind"] == "cifar"
    assert fields["name"] == "cnn9_tanh_cos"  # the preset these flags are
    assert fields["model_dir"] == os.path.abspath("/repo/model/cnn9_tanh_cos")
    assert fields["log_dir"] == os.path.abspath("/repo/log/cnn9_tanh_cos")


def test_flags_override_the_recipe_and_name_the_run():
    fields, (dataset, _) = config(
        "--network", "cnn9", "--variant", "log_sqcos", "--no_bn", "--no_relu", "--dataset",
        "cifar100", "--augmentation", "pad_crop_flip", "--max_steps", "7", "--base_lr", "0.5",
        "--batch_size", "16", *TINY_CNN9)
    spec = fields["model"]
    assert (spec.network, spec.variant, spec.batch_norm, spec.num_classes) == (
        "cnn9", "log_sqcos", False, 100)
    assert spec.options == {"widths": (4, 8, 8), "fc_width": 256, "relu": False}
    recipe = fields["recipe"]
    assert (recipe.max_steps, recipe.base_lr, recipe.batch_size) == (7, 0.5, 16)
    assert recipe.drops == (34000, 54000)  # what no flag overrides stays the recipe's
    assert fields["augmentation"] == "pad_crop_flip"
    assert fields["name"] == "cnn9_log_sqcos_wo_bn_wo_relu_cifar100"
    fields, _ = config("--network", "cnn9", "--variant", "ball_cos", *TINY_CNN9)
    assert fields["name"] == "cnn9_ball_cos"  # a preset at other sizes keeps its name


def test_presets_choose_network_dataset_and_recipe():
    fields, (dataset, source) = config("--preset", "imagenet", "--widths", "4", "4", "8", "8")
    assert fields["model"].network == "imagenet_resnet18" and dataset.name == "imagenet"
    assert source == "tfrecord" and fields["recipe"].name == "dcnet_imagenet"
    assert fields["input_kind"] == "imagenet" and fields["name"] == "imagenet"
    fields, (dataset, _) = config("--preset", "ball_cos")
    assert (fields["model"].network, fields["model"].variant, dataset.name) == (
        "cifar_resnet32", "ball_cos", "cifar100")
    assert fields["recipe"].drops == (20000, 30000, 37500) and fields["recipe"].max_steps == 42500
    assert fields["model"].options == {"widths": (96, 192, 384), "units_per_stage": 5}


@pytest.mark.parametrize("argv,fragments", [
    (["--network", "cnn9", "--dataset", "imagenet"], ["--dataset", "cnn9", "imagenet"]),
    (["--network", "cnn9", "--units_per_stage", "2"], ["units_per_stage", "cnn9"]),
    (["--network", "cifar_resnet32", "--no_relu"], ["relu", "cifar_resnet32"]),
    (["--preset", "no_such_preset"], ["no_such_preset", "cnn9_tanh_cos"]),
    (["--network", "cnn9", "--variant", "tanh_sin"], ["variant", "tanh_sin"]),
    (["--network", "cnn9", "--augmentation", "imagenet"], ["--augmentation", "imagenet"]),
    (["--network", "cnn9", "--widths", "4", "8"], ["widths", "(4, 8)"]),
    (["--preset", "tanh_cos", "--network", "cnn9"], ["--network", "tanh_cos", "cnn9"]),
    (["--network", "cnn9", "--num_classes", "5"], ["--num_classes", "5"]),
    ([], ["--preset", "--network"]),
    (["--network", "cnn9", "--source", "synthetic", "--widths", "4", "8", "8",
      "--batch_size", "0"], ["--batch_size", "0"]),
    (["--network", "cnn9", "--base_lr", "nan"], ["--base_lr", "nan"]),
    (["--network", "cnn9", "--base_lr", "inf"], ["--base_lr", "inf"]),
    (["--network", "cnn9", "--source", "tfrecord"], ["--source", "tfrecord"]),
])
def test_bad_flags_end_with_one_line(capsys, tmp_path, argv, fragments):
    one_line_exit(capsys, argv, *fragments, repo_root=str(tmp_path))
    assert not os.listdir(tmp_path)  # nothing written before the check


# --------------------------------------------------------------------------------------
# The tfds code path of both CIFAR datasets, offline (tfds.testing.mock_data)


@pytest.mark.parametrize("dataset,classes", [("cifar10", 10), ("cifar100", 100)])
def test_tfds_path_trains_and_evaluates_under_mock_data(tmp_path, capsys, dataset, classes):
    tfds = pytest.importorskip("tensorflow_datasets")
    from dcnet_keras import evaluate

    model_dir = tmp_path / "model"
    argv = ["--network", "cnn9", "--variant", "tanh_cos", "--dataset", dataset, "--source",
            "tfds", *TINY_CNN9, "--max_steps", "4", "--batch_size", "8", "--log_every", "2",
            "--eval_every", "100", "--checkpoint_every", "100", "--no-progress", "--no_export",
            "--model_dir", str(model_dir), "--log_dir", str(tmp_path / "log")]
    with tfds.testing.mock_data(num_examples=24):
        result = cli.main(argv, repo_root=str(tmp_path))
        out = capsys.readouterr().out
        assert "==== data: " in out and f"'{dataset}'" in out
        assert result.model.output_shape == (None, classes)
        # the run folder alone: its model_spec.json names the model and the dataset
        accuracy = evaluate.main([str(model_dir), "--source", "tfds"])
    assert 0.0 <= accuracy[1] <= accuracy[5] <= 1.0
    train = [TRAIN_LINE.match(l) for l in (tmp_path / "log" / "log_train.txt").read_text()
             .splitlines()]
    assert train and all(train) and [int(m.group(1)) for m in train] == [2]
    test = [TEST_LINE.match(l) for l in (tmp_path / "log" / "log_test.txt").read_text()
            .splitlines()]
    assert test and all(test) and [int(m.group(1)) for m in test] == [3]
    # evaluate counts the same mocked test split as the run's final test
    assert abs(accuracy[1] - float(test[-1].group(2))) < 1e-4


# --------------------------------------------------------------------------------------
# E2E: subprocess runs


def cifar10_binary_folder(folder, per_class_train=40, per_class_test=10, seed=0):
    """A small learnable CIFAR-10 in the real binary format, written with NumPy alone.

    Each class is a colour (10 fixed random RGB means) plus pixel noise; the five training
    files and ``test_batch.bin`` hold records of 1 label byte + 3072 channel-major bytes.
    Returns the test labels.
    """
    rng = np.random.default_rng(seed)
    colours = rng.uniform(30, 225, (10, 3))

    def records(count_per_class):
        labels = np.repeat(np.arange(10), count_per_class)
        rng.shuffle(labels)
        images = colours[labels][:, None, None, :] + rng.normal(0, 25, (labels.size, 32, 32, 3))
        images = np.clip(np.rint(images), 0, 255).astype(np.uint8)
        rows = np.concatenate([labels[:, None].astype(np.uint8),
                               images.transpose(0, 3, 1, 2).reshape(labels.size, -1)], axis=1)
        return rows, labels

    os.makedirs(folder, exist_ok=True)
    train, _ = records(per_class_train)
    for index, part in enumerate(np.array_split(train, 5), start=1):
        part.tofile(os.path.join(folder, f"data_batch_{index}.bin"))
    test, labels = records(per_class_test)
    test.tofile(os.path.join(folder, "test_batch.bin"))
    return labels


def run_module(args, cwd, env=None, timeout=600):
    environment = dict(os.environ if env is None else env)
    environment["PYTHONPATH"] = REPO + os.pathsep + environment.get("PYTHONPATH", "")
    return subprocess.run([sys.executable] + args, cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.e2e
def test_cnn9_learns_on_a_real_format_cifar10_folder(tmp_path):
    data = tmp_path / "cifar10"
    cifar10_binary_folder(data)
    result = run_module(
        ["-m", "dcnet_keras.train", "--network", "cnn9", "--variant", "tanh_cos", "--dataset",
         "cifar10", "--data_dir", str(data), *TINY_CNN9, "--max_steps", "80",
         "--batch_size", "32", "--log_every", "20", "--eval_every", "40",
         "--checkpoint_every", "1000", "--no_export", "--no-progress",
         "--debias_moving_averages"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"==== data: CIFAR-10 binary files in {data}" in result.stdout
    log = tmp_path / "log" / "cnn9_tanh_cos"
    train = [TRAIN_LINE.match(l) for l in (log / "log_train.txt").read_text().splitlines()]
    assert train and all(train), (log / "log_train.txt").read_text()
    assert [int(m.group(1)) for m in train] == [20, 40, 60]
    test = [TEST_LINE.match(l) for l in (log / "log_test.txt").read_text().splitlines()]
    assert test and all(test), (log / "log_test.txt").read_text()
    assert [int(m.group(1)) for m in test] == [40, 79]
    final = float(test[-1].group(2))
    assert final >= 0.3, f"test accuracy {final} is not well above chance (0.1)"
    assert (tmp_path / "model" / "cnn9_tanh_cos" / "checkpoints").is_dir()


@pytest.mark.e2e
def test_readme_first_command_offline_ends_with_one_line_about_the_network(tmp_path):
    if os.path.isdir(os.path.join(REPO, "cifar-100-binary")):
        pytest.skip("<repo>/cifar-100-binary exists: the command would train on it")
    env = dict(os.environ, HOME=str(tmp_path))  # an empty ~/tensorflow_datasets
    env.pop("TFDS_DATA_DIR", None)
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env[proxy] = "http://127.0.0.1:9"  # nothing listens there: offline for sure
    script = os.path.join(REPO, "dcnet_cifar100", "tanh_cos", "train_resnet.py")
    result = run_module([script, "--model_dir", str(tmp_path / "model"), "--log_dir",
                         str(tmp_path / "log")], cwd=os.path.dirname(script), env=env,
                        timeout=600)
    assert result.returncode != 0
    lines = [l for l in result.stderr.strip().splitlines() if l.strip()]
    last = lines[-1]
    assert last.startswith("error: could not load tfds 'cifar100'"), result.stderr[-3000:]
    assert "--data_dir" in last and "synthetic" in last
    for word in ("ModuleNotFoundError", "ImportError", "Traceback"):
        assert word not in result.stderr, result.stderr[-3000:]
    assert not (tmp_path / "model").exists() and not (tmp_path / "log").exists()
