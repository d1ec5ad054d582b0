"""Checkpoint recovery and retention (:mod:`dcnet_keras.training.checkpoints`), by fault
injection.

Three checkpoints (iterations 10, 20, 30) are written as a training run writes
them (``tf.train.CheckpointManager`` over ``tf.train.Checkpoint(model=...,
optimizer=..., next_iteration=..., iterator=...)``), each with different
random values in every weight, moving average, optimiser slot and counter,
and NumPy copies of every value are taken at save time.  Each test damages a
copy of that folder as a crash, a full disk or bit rot would, restores into
freshly built objects and compares every value with the copies of the
checkpoint that should have been chosen.
"""

import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from dcnet_keras.export import ExportError, checkpoint_prefix
from dcnet_keras.training import checkpoints
from dcnet_keras.training.checkpoints import (CheckpointError, CheckpointDoesNotFitError,
                                              complete_checkpoints, make_manager,
                                              newest_readable, remove_stale_temporaries,
                                              restore_newest)

NUMBERS = (10, 20, 30)
DATA = ".data-00000-of-00001"


def build(width=4, extra_layer=False):
    """``(checkpoint, variables, iterator)``: a tiny model with batch norm, a built Adam
    optimiser, the next iteration and a shuffled data iterator, as a run checkpoints them."""
    layers = [keras.Input((3,)), keras.layers.Dense(width), keras.layers.BatchNormalization(),
              keras.layers.Dense(2)]
    if extra_layer:
        layers.append(keras.layers.Dense(2))
    model = keras.Sequential(layers)
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(model.trainable_variables)
    next_iteration = tf.Variable(0, dtype=tf.int64, trainable=False)
    iterator = iter(tf.data.Dataset.range(1000).shuffle(64, seed=3).repeat())
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer,
                                     next_iteration=next_iteration, iterator=iterator)
    variables = list(model.weights) + list(optimizer.variables) + [next_iteration]
    return checkpoint, variables, iterator


def snapshot(variables, iterator=None):
    """NumPy copies of every value (and, when given, the iterator's next element, which
    consumes it)."""
    values = [np.array(v.numpy(), copy=True) for v in variables]
    if iterator is not None:
        values.append(int(next(iterator)))
    return values


def assert_same(values, expected):
    assert len(values) == len(expected)
    for i, (a, b) in enumerate(zip(values, expected)):
        assert np.array_equal(a, b), f"value {i} differs: {a} != {b}"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """``(folder, {N: values at N})`` for checkpoints 10, 20 and 30."""
    folder = str(tmp_path_factory.mktemp("run") / "checkpoints")
    checkpoint, variables, iterator = build()
    manager = tf.train.CheckpointManager(checkpoint, folder, max_to_keep=None)
    rng = np.random.default_rng(0)
    expected = {}
    for number in NUMBERS:
        for v in variables:
            if "float" in str(v.dtype):
                v.assign(rng.normal(size=v.shape).astype(np.float32))
            else:
                v.assign(int(rng.integers(1, 10 ** 6)))
        variables[-1].assign(number + 1)
        for _ in range(int(rng.integers(1, 20))):
            next(iterator)
        manager.save(checkpoint_number=number)
        expected[number] = snapshot(variables, iterator)  # next element: the saved position
    return folder, expected


@pytest.fixture
def run(saved, tmp_path):
    """A fresh copy of the saved folder: ``(folder, expected values)``."""
    folder, expected = saved
    copy = str(tmp_path / "model" / "checkpoints")
    shutil.copytree(folder, copy)
    return copy, expected


def restore(folder, **kwargs):
    """``(prefix, skipped, warnings, values)`` restored into fresh objects."""
    checkpoint, variables, iterator = build(**kwargs)
    lines = []
    prefix, skipped = restore_newest(checkpoint, folder, warn=lines.append)
    return prefix, skipped, lines, snapshot(variables, iterator)


def prefix_of(folder, number):
    return os.path.join(folder, f"ckpt-{number}")


# ----------------------------------------------------------------------------- faults


def truncate(path, fraction):
    with open(path, "r+b") as f:
        f.truncate(int(os.path.getsize(path) * fraction))


def flip(path, where):
    data = bytearray(open(path, "rb").read())
    position = {"first": 0, "middle": len(data) // 2, "last": len(data) - 1}[where]
    data[position] ^= 0x5A
    open(path, "wb").write(bytes(data))


FAULTS = {  # name: (damage(prefix), the file the warning must name)
    "truncated data": (lambda p: truncate(p + DATA, 0.5), DATA),
    "empty data": (lambda p: truncate(p + DATA, 0.0), DATA),
    "flipped first data byte": (lambda p: flip(p + DATA, "first"), DATA),
    "flipped middle data byte": (lambda p: flip(p + DATA, "middle"), DATA),
    "flipped last data byte": (lambda p: flip(p + DATA, "last"), DATA),
    "truncated index": (lambda p: truncate(p + ".index", 0.5), ".index"),
    "garbage index": (lambda p: open(p + ".index", "wb").write(b"not a table\n" * 9), ".index"),
    "flipped index byte": (lambda p: flip(p + ".index", "middle"), ".index"),
    "deleted data": (lambda p: os.remove(p + DATA), DATA),
    "deleted index": (lambda p: os.remove(p + ".index"), ".index"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_broken_newest_falls_back_to_the_next_older(run, fault):
    folder, expected = run
    damage, suffix = FAULTS[fault]
    damage(prefix_of(folder, 30))
    prefix, skipped, lines, values = restore(folder)
    assert prefix == prefix_of(folder, 20)
    assert_same(values, expected[20])
    assert len(lines) == 1 and "\n" not in lines[0], lines
    broken = prefix_of(folder, 30) + suffix
    assert broken in lines[0] and lines[0].startswith("warning: checkpoint ")
    assert ("missing" if fault.startswith("deleted") else "unreadable") in lines[0]
    assert "trying the next older one" in lines[0]
    assert [(s.prefix, s.path) for s in skipped] == [(prefix_of(folder, 30), broken)]


def test_two_broken_fall_back_two(run):
    folder, expected = run
    truncate(prefix_of(folder, 30) + DATA, 0.9)
    flip(prefix_of(folder, 20) + ".index", "first")
    prefix, skipped, lines, values = restore(folder)
    assert prefix == prefix_of(folder, 10)
    assert_same(values, expected[10])
    assert len(lines) == 2
    assert prefix_of(folder, 30) + DATA in lines[0]
    assert prefix_of(folder, 20) + ".index" in lines[1]


@pytest.mark.parametrize("state", ["text garbage", "empty", "not utf-8", "stale", "missing"])
def test_state_file_is_never_trusted(run, state):
    """The newest checkpoint is found by its files, whatever the ``checkpoint`` file says."""
    folder, expected = run
    path = os.path.join(folder, "checkpoint")
    if state == "missing":
        os.remove(path)
    else:
        content = {"text garbage": b"model_checkpoint_path: ??? {{{\n",
                   "empty": b"", "not utf-8": b"\xff\xfe\x00garbage\x80",
                   "stale": b'model_checkpoint_path: "ckpt-10"\n'
                            b'all_model_checkpoint_paths: "ckpt-10"\n'}[state]
        open(path, "wb").write(content)
    prefix, skipped, lines, values = restore(folder)
    assert prefix == prefix_of(folder, 30) and skipped == [] and lines == []
    assert_same(values, expected[30])


def test_stale_temporary_folders_are_ignored_then_removed(run):
    """A save interrupted before its index was written leaves (TensorFlow 2.21)
    ``ckpt-N_temp/part-*`` and possibly ``ckpt-N.data-*`` without ``ckpt-N.index``."""
    folder, expected = run
    # a real interrupted save: TensorFlow renames the data part, then cannot write the index
    checkpoint, variables, _ = build()
    manager = tf.train.CheckpointManager(checkpoint, folder, max_to_keep=None)
    os.makedirs(prefix_of(folder, 40) + ".index")
    with pytest.raises(tf.errors.OpError):
        manager.save(checkpoint_number=40)
    os.rmdir(prefix_of(folder, 40) + ".index")
    assert os.path.isdir(prefix_of(folder, 40) + "_temp")  # what TF leaves behind
    assert os.path.isfile(prefix_of(folder, 40) + DATA)
    # and a hand-made older one
    os.makedirs(prefix_of(folder, 7) + "_temp")
    open(os.path.join(prefix_of(folder, 7) + "_temp", "part-00000-of-00001.index"), "wb").close()
    state_rewrite = os.path.join(folder, "checkpoint.tmp" + "0123456789abcdef" * 2)
    open(state_rewrite, "w").write('model_checkpoint_path: "ckpt-')  # a killed state rewrite

    prefix, skipped, lines, values = restore(folder)
    assert prefix == prefix_of(folder, 30)
    assert_same(values, expected[30])
    assert len(lines) == 1 and prefix_of(folder, 40) + ".index" in lines[0]
    assert "missing" in lines[0]

    model_dir = os.path.dirname(folder)
    removed = remove_stale_temporaries(model_dir)
    assert removed == sorted([prefix_of(folder, 7) + "_temp", prefix_of(folder, 40) + "_temp",
                              state_rewrite])
    assert complete_checkpoints(folder) == [prefix_of(folder, n) for n in (30, 20, 10)]
    assert remove_stale_temporaries(model_dir) == []


def test_no_checkpoint_at_all(tmp_path):
    for folder in (tmp_path / "absent", tmp_path / "empty", tmp_path / "temp_only"):
        os.makedirs(tmp_path / "empty", exist_ok=True)
        os.makedirs(tmp_path / "temp_only" / "ckpt-5_temp", exist_ok=True)
        checkpoint, variables, _ = build()
        before = snapshot(variables)
        lines = []
        assert restore_newest(checkpoint, str(folder), warn=lines.append) == (None, [])
        assert lines == []
        assert_same(snapshot(variables), before)
        assert newest_readable(str(folder), warn=lines.append) == (None, [])


def tree(folder):
    """``{relative path: bytes}`` of every file under ``folder``."""
    result = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            result[os.path.relpath(path, folder)] = open(path, "rb").read()
    return result


def test_none_readable_is_one_line_naming_the_folder(run):
    folder, _ = run
    truncate(prefix_of(folder, 30) + DATA, 0.3)
    flip(prefix_of(folder, 20) + DATA, "middle")
    os.remove(prefix_of(folder, 10) + ".index")
    files = tree(folder)
    checkpoint, variables, _ = build()
    before = snapshot(variables)
    lines = []
    with pytest.raises(CheckpointError) as caught:
        restore_newest(checkpoint, folder, warn=lines.append)
    message = str(caught.value)
    assert "\n" not in message and folder in message and "none of the 3" in message
    assert prefix_of(folder, 30) + DATA in message  # the newest broken file is named
    assert len(lines) == 3 and "no older checkpoint is left" in lines[-1]
    assert_same(snapshot(variables), before)  # nothing assigned
    assert tree(folder) == files  # nothing on disk touched
    with pytest.raises(CheckpointError):
        newest_readable(folder, warn=lines.append)


@pytest.mark.parametrize("kind", ["wider layer", "extra layer"])
def test_a_model_mismatch_is_an_error_never_a_fall_back(run, kind):
    folder, _ = run
    options = {"width": 5} if kind == "wider layer" else {"extra_layer": True}
    for damaged in (False, True):
        if damaged:  # the newest broken: the older one does not fit either, and says so
            truncate(prefix_of(folder, 30) + DATA, 0.5)
        checkpoint, variables, _ = build(**options)
        lines = []
        with pytest.raises(CheckpointDoesNotFitError) as caught:
            restore_newest(checkpoint, folder, warn=lines.append)
        message = str(caught.value)
        newest = prefix_of(folder, 20 if damaged else 30)
        assert "\n" not in message and "does not fit the model" in message
        assert newest in message and folder in message
        assert len(lines) == int(damaged)


def test_fall_back_over_a_partial_restore_overwrites_every_value(run, monkeypatch):
    """A restore that fails after assigning part of the values (the file changed after
    it was checked) is followed by the older checkpoint's restore: the result is that
    checkpoint exactly, as a clean restore of it gives."""
    folder, expected = run
    flip(prefix_of(folder, 30) + DATA, "middle")
    checkpoint, variables, iterator = build()
    for v in variables[::2]:  # what a partial restore may leave: some values assigned
        v.assign(tf.fill(v.shape, tf.cast(7, v.dtype)))
    real_check, checked = checkpoints.unreadable_part, set()

    def check_misses_it_once(prefix):  # the damage happens between the check and the restore
        if prefix in checked:
            return real_check(prefix)
        checked.add(prefix)
        return None

    monkeypatch.setattr(checkpoints, "unreadable_part", check_misses_it_once)
    lines = []
    prefix, skipped = restore_newest(checkpoint, folder, warn=lines.append)
    assert prefix == prefix_of(folder, 20)
    assert len(lines) == 1 and prefix_of(folder, 30) + DATA in lines[0]
    restored = snapshot(variables, iterator)
    assert_same(restored, expected[20])

    clean, clean_variables, clean_iterator = build()
    clean.restore(prefix_of(folder, 20)).assert_existing_objects_matched()
    assert_same(restored, snapshot(clean_variables, clean_iterator))


def test_restore_is_repeatable_and_newest_readable_agrees(run):
    folder, expected = run
    for _ in range(2):
        prefix, _, _, values = restore(folder)
        assert_same(values, expected[30])
    assert newest_readable(folder, warn=pytest.fail) == (prefix_of(folder, 30), [])


# ----------------------------------------------------------------------------- export


def test_export_and_evaluate_find_the_same_checkpoint(run, capsys):
    folder, _ = run
    model_dir = os.path.dirname(folder)
    open(os.path.join(folder, "checkpoint"), "wb").write(b"")  # crashed latest_checkpoint
    assert checkpoint_prefix(model_dir) == prefix_of(folder, 30)
    truncate(prefix_of(folder, 30) + DATA, 0.5)
    capsys.readouterr()
    assert checkpoint_prefix(model_dir) == prefix_of(folder, 20)
    assert checkpoint_prefix(folder) == prefix_of(folder, 20)
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 2 and all(prefix_of(folder, 30) + DATA in w for w in warning)
    assert checkpoint_prefix(prefix_of(folder, 10)) == prefix_of(folder, 10)  # as named
    for number in (20, 10):
        truncate(prefix_of(folder, number) + DATA, 0.5)
    with pytest.raises(ExportError) as caught:
        checkpoint_prefix(model_dir)
    assert "\n" not in str(caught.value) and folder in str(caught.value)


# ----------------------------------------------------------------------------- retention


def save_all(folder, numbers, keep):
    checkpoint, variables, _ = build()
    manager = make_manager(checkpoint, folder, keep=keep)
    for number in numbers:
        variables[-1].assign(number + 1)
        manager.save(checkpoint_number=number)
    return manager


@pytest.mark.parametrize("keep, kept", [(None, (42499, 40000, 30000, 20000, 10000)),
                                        (2, (42499, 40000)), (1, (42499,))])
def test_retention(tmp_path, keep, kept):
    folder = str(tmp_path / "checkpoints")
    save_all(folder, (10000, 20000, 30000, 40000, 42499), keep)
    assert complete_checkpoints(folder) == [prefix_of(folder, n) for n in kept]
    assert sorted(os.listdir(folder)) == sorted(
        ["checkpoint"] + [f"ckpt-{n}{end}" for n in kept for end in (".index", DATA)])


@pytest.mark.parametrize("state", ["text garbage", "empty", "not utf-8", "missing"])
@pytest.mark.parametrize("keep", [None, 2])
def test_a_manager_over_a_bad_state_file(run, state, keep):
    folder, expected = run
    path = os.path.join(folder, "checkpoint")
    if state == "missing":
        os.remove(path)
    else:
        open(path, "wb").write({"text garbage": b"all_model_checkpoint_paths: [[[",
                                "empty": b"", "not utf-8": b"\x80\x81\xfe"}[state])
    checkpoint, variables, _ = build()
    manager = make_manager(checkpoint, folder, keep=keep)
    assert complete_checkpoints(folder) == [prefix_of(folder, n) for n in (30, 20, 10)]
    variables[-1].assign(41)
    manager.save(checkpoint_number=40)
    kept = (40, 30, 20, 10) if keep is None else (40, 30)
    assert complete_checkpoints(folder) == [prefix_of(folder, n) for n in kept]
    prefix, _, _, values = restore(folder)
    assert prefix == prefix_of(folder, 40) and int(values[len(variables) - 1]) == 41
    # a manager built again keeps counting the checkpoints already there
    make_manager(build()[0], folder, keep=keep).save(checkpoint_number=50)
    kept = (50,) + kept if keep is None else (50, 40)
    assert complete_checkpoints(folder) == [prefix_of(folder, n) for n in kept]


def test_state_file_written_from_the_scan(run):
    folder, _ = run
    open(os.path.join(folder, "checkpoint"), "wb").write(b"\x00garbage")
    make_manager(build()[0], folder)
    state = tf.train.get_checkpoint_state(folder)
    assert state.model_checkpoint_path == prefix_of(folder, 30)
    assert list(state.all_model_checkpoint_paths) == [prefix_of(folder, n) for n in NUMBERS]
    assert tf.train.latest_checkpoint(folder) == prefix_of(folder, 30)


@pytest.mark.parametrize("keep", [0, -1, True, 2.5, "3"])
def test_keep_must_be_a_positive_integer(tmp_path, keep):
    with pytest.raises(ValueError, match=r"^keep_checkpoints: .*received"):
        make_manager(build()[0], str(tmp_path), keep=keep)


# ----------------------------------------------------------------------------- exports


def test_interrupted_exports_are_cleaned_up(tmp_path):
    """``atomic_folder`` leftovers: a staging folder is removed; a previous export moved
    aside is put back when its place is empty, else removed."""
    served = tmp_path / "model" / "saved_model"

    def put(relative, content=b"x"):
        path = served / relative
        os.makedirs(path.parent, exist_ok=True)
        path.write_bytes(content)

    put("1/saved_model.pb", b"current")
    put(".1.partial-abc123xy/saved_model.pb", b"half")
    put(".1.old-q1w2e3r4/1/saved_model.pb", b"older")  # renamed aside, then replaced
    put(".2.old-zzzzzzzz/2/saved_model.pb", b"previous")  # killed between the renames
    put(".2.partial-yyyyyyyy/saved_model.pb", b"new")
    put(".keep", b"not ours")
    removed = remove_stale_temporaries(tmp_path / "model")
    assert removed == sorted(str(served / n) for n in (".1.partial-abc123xy", ".1.old-q1w2e3r4",
                                                       ".2.old-zzzzzzzz", ".2.partial-yyyyyyyy"))
    assert tree(served) == {"1/saved_model.pb": b"current", "2/saved_model.pb": b"previous",
                            ".keep": b"not ours"}


# ----------------------------------------------------------------------------- a real network


def test_cnn9_fall_back_and_widths_mismatch(tmp_path):
    """The registry's CNN-9 (decoupled convs, batch norm): the fall back restores every
    weight and moving average of the older checkpoint; other widths are refused."""
    from dcnet_keras.models import build_model

    def cnn9(widths):
        model = build_model("cnn9", variant="tanh_cos", num_classes=10, widths=widths,
                            fc_width=4)
        return model, tf.train.Checkpoint(model=model)

    folder = str(tmp_path / "checkpoints")
    model, checkpoint = cnn9((4, 4, 4))
    manager = tf.train.CheckpointManager(checkpoint, folder, max_to_keep=None)
    rng = np.random.default_rng(1)
    expected = {}
    for number in (1, 2):
        for v in model.weights:
            v.assign(rng.uniform(0.5, 1.5, size=v.shape).astype(np.float32))
        manager.save(checkpoint_number=number)
        expected[number] = snapshot(model.weights)
    flip(prefix_of(folder, 2) + DATA, "middle")
    fresh, fresh_checkpoint = cnn9((4, 4, 4))
    lines = []
    assert restore_newest(fresh_checkpoint, folder, warn=lines.append)[0] == prefix_of(folder, 1)
    assert len(lines) == 1 and prefix_of(folder, 2) + DATA in lines[0]
    assert_same(snapshot(fresh.weights), expected[1])
    with pytest.raises(CheckpointDoesNotFitError, match="does not fit the model"):
        restore_newest(cnn9((4, 4, 8))[1], folder, warn=lines.append)
