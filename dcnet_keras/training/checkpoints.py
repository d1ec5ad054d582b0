"""Which training checkpoint to read, and which to keep: the one home of both.

A run's checkpoints live in ``<model_dir>/checkpoints/`` as TensorFlow writes
them through ``tf.train.CheckpointManager``: checkpoint ``N`` (the iteration)
is the prefix ``ckpt-N``, i.e. the files ``ckpt-N.index`` (a table of tensor
names, dtypes, shapes, offsets and CRC32C checksums) and
``ckpt-N.data-SSSSS-of-TTTTT`` (the tensor bytes, ``TTTTT`` shards numbered
from ``00000``), beside a text ``checkpoint`` state file that lists them.
While ``save`` runs, TensorFlow 2.21 writes ``ckpt-N_temp/part-*`` and then
renames the parts into place, and rewrites the state file through
``checkpoint.tmp<32 hex digits>``.

- :func:`complete_checkpoints` finds checkpoints by scanning the folder (the
  state file may be missing, empty, garbage or stale, and is never read);
- :func:`newest_readable` picks the newest checkpoint whose every tensor reads
  back with a matching checksum (no model needed: export and evaluate);
- :func:`restore_newest` restores a ``tf.train.Checkpoint`` from the newest
  readable checkpoint, falling back to older ones with a one-line warning
  that names the broken file, and refuses a checkpoint that does not fit the
  model (never a silent fall back);
- :func:`remove_stale_temporaries` removes what interrupted writes left;
- :func:`make_manager` builds the ``CheckpointManager`` that saves new
  checkpoints and keeps every one (the original's behaviour) or the newest
  ``keep``.

Order at the start of a run: ``restore_newest`` (it raises, touching nothing,
when no checkpoint is readable), then ``remove_stale_temporaries``, then
``make_manager``.
"""

import json
import numbers
import os
import re
import shutil
import sys
import time
import uuid
from typing import NamedTuple

import tensorflow as tf

CHECKPOINT_NAME = "ckpt"  # the CheckpointManager's default checkpoint_name
STATE_FILE = "checkpoint"

_MESSAGE_LIMIT = 300


class CheckpointError(ValueError):
    """No checkpoint in a folder can be read, or the checkpoint does not fit the model
    (a one-line message naming the folder)."""


class CheckpointDoesNotFitError(CheckpointError):
    """A readable checkpoint whose variables do not fit the model being restored
    (another variant, widths, units, classes or network)."""


class Skipped(NamedTuple):
    """A checkpoint passed over: its ``prefix``, the broken or missing ``path`` and why."""

    prefix: str
    path: str
    reason: str


def print_to_stderr(line):
    print(line, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- scanning


def _pattern(name):
    return re.compile(rf"^{re.escape(name)}-(\d+)\.(?:index|data-(\d{{5}})-of-(\d{{5}}))$")


def checkpoint_number(prefix):
    """``N`` of a prefix ``.../<name>-N``."""
    match = re.search(r"-(\d+)$", os.fspath(prefix))
    if not match:
        raise ValueError(f"checkpoint: {prefix!r} is not a numbered checkpoint prefix "
                         "(expected <folder>/ckpt-<N>)")
    return int(match.group(1))


def _scan(folder, name=CHECKPOINT_NAME):
    """``[(N, prefix, missing file or None), ...]`` newest first, for every ``N`` that has
    any file of a checkpoint ``<name>-N`` in ``folder``.

    Complete (``missing`` None): ``<name>-N.index`` and, for one shard count ``T``
    among its data files, every ``<name>-N.data-SSSSS-of-TTTTT`` for ``S < T``.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        return []
    pattern = _pattern(name)
    found = {}  # N -> {"index": bool, "shards": {T: set of S}}
    for entry in os.listdir(folder):
        match = pattern.match(entry)
        if not match or not os.path.isfile(os.path.join(folder, entry)):
            continue
        number = int(match.group(1))
        files = found.setdefault(number, {"index": False, "shards": {}})
        if match.group(2) is None:
            files["index"] = True
        else:
            files["shards"].setdefault(int(match.group(3)), set()).add(int(match.group(2)))
    result = []
    for number in sorted(found, reverse=True):
        prefix = os.path.join(folder, f"{name}-{number}")
        files = found[number]
        missing = None
        if not files["index"]:
            missing = prefix + ".index"
        elif not files["shards"]:
            missing = prefix + ".data-00000-of-00001"
        elif not any(present == set(range(total)) for total, present in files["shards"].items()):
            total, present = max(files["shards"].items())
            first = min(set(range(total)) - present) if total else 0
            missing = prefix + f".data-{first:05d}-of-{total:05d}"
        result.append((number, prefix, missing))
    return result


def complete_checkpoints(folder, name=CHECKPOINT_NAME):
    """Prefixes of the complete checkpoints ``<folder>/<name>-N``, newest (largest ``N``)
    first, found by listing the folder (see :func:`_scan`); ``[]`` for a missing folder.
    Whether their bytes are intact is :func:`newest_readable`'s question."""
    return [prefix for _, prefix, missing in _scan(folder, name) if missing is None]


# ----------------------------------------------------------------------------- reading


def _one_line(error):
    """``Type: first line of the message`` without TensorFlow's op decorations."""
    text = str(error)
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
    text = re.sub(r"\s*\[Op:\w+\]", "", text)
    text = " ".join(text.split("\n")[0].split()) or "no message"
    if len(text) > _MESSAGE_LIMIT:
        text = text[:_MESSAGE_LIMIT] + "..."
    return f"{type(error).__name__}: {text}"


def _data_files(prefix):
    folder, stem = os.path.split(prefix)
    pattern = re.compile(rf"^{re.escape(stem)}\.data-\d{{5}}-of-\d{{5}}$")
    return sorted(os.path.join(folder, f) for f in os.listdir(folder or ".") if pattern.match(f))


def _broken_data_file(prefix, error):
    """The data file an error is about: the shard its message names, the only one, or
    ``<prefix>.data-*``."""
    files = _data_files(prefix)
    for path in files:
        if path in str(error):
            return path
    shard = re.search(r"shard (\d+)", str(error))
    if shard:
        named = [f for f in files if f".data-{int(shard.group(1)):05d}-of-" in f]
        if len(named) == 1:
            return named[0]
    return files[0] if len(files) == 1 else prefix + ".data-*"


def unreadable_part(prefix):
    """``None`` when every tensor of checkpoint ``prefix`` reads back, else
    ``(broken file, reason)``.

    The index is opened with ``tf.train.load_checkpoint`` (a truncated, garbage
    or bit-flipped index fails here: its blocks carry checksums); then each
    tensor it lists is read with the ``RestoreV2`` op, which checks the CRC32C
    stored in the index against the bytes read (flipped bytes), their count
    (a truncated data file) and decodes variant tensors (a data-iterator
    state).  Nothing is assigned to any variable.
    """
    prefix = os.fspath(prefix)
    try:
        dtypes = tf.train.load_checkpoint(prefix).get_variable_to_dtype_map()
    except MemoryError:
        raise
    except Exception as error:  # any failure to open the table: the index is unusable
        return prefix + ".index", _one_line(error)
    for tensor in sorted(dtypes):
        try:
            tf.raw_ops.RestoreV2(prefix=prefix, tensor_names=[tensor], shape_and_slices=[""],
                                 dtypes=[dtypes[tensor]])
        except MemoryError:
            raise
        except Exception as error:
            return _broken_data_file(prefix, error), f"tensor {tensor!r}: {_one_line(error)}"
    return None


def _warning(skipped, older_left):
    """The one line for a checkpoint passed over."""
    then = "trying the next older one" if older_left else "no older checkpoint is left"
    if skipped.reason == "missing":
        return (f"warning: checkpoint {skipped.prefix} is incomplete ({skipped.path} is "
                f"missing); {then}")
    return f"warning: checkpoint {skipped.path} is unreadable ({skipped.reason}); {then}"


def _none_readable(folder, skipped):
    newest = skipped[0]
    why = "is missing" if newest.reason == "missing" else f"is unreadable: {newest.reason}"
    return CheckpointError(
        f"checkpoint: none of the {len(skipped)} checkpoint(s) in {folder} is readable "
        f"(the newest, {newest.path}, {why}); nothing was changed: repair or move the "
        "folder away to start afresh")


def _candidates(folder, name, warn):
    """Yield ``(prefix, skipped, older_left)`` for the readable checkpoints, newest first;
    the ones passed over are warned about and collected in ``skipped`` (one list, shared
    by every step); :class:`CheckpointError` at the end when any was passed over."""
    entries = _scan(folder, name)
    skipped = []
    for position, (_, prefix, missing) in enumerate(entries):
        older_left = position + 1 < len(entries)
        if missing is not None:
            skip = Skipped(prefix, missing, "missing")
        else:
            problem = unreadable_part(prefix)
            if problem is None:
                yield prefix, skipped, older_left
                continue
            skip = Skipped(prefix, *problem)
        skipped.append(skip)
        warn(_warning(skip, older_left))
    if skipped:
        raise _none_readable(folder, skipped)


def newest_readable(folder, warn=print_to_stderr, name=CHECKPOINT_NAME):
    """``(prefix, skipped)``: the newest checkpoint in ``folder`` whose files are all there
    and read back intact (:func:`unreadable_part`), and the newer ones passed over (one
    ``warn`` line each, naming the broken file).  ``(None, [])`` when the folder holds no
    checkpoint file; :class:`CheckpointError` when it holds some and none is readable."""
    for prefix, skipped, _ in _candidates(folder, name, warn):
        return prefix, list(skipped)
    return None, []


def restore_newest(checkpoint, folder, warn=print_to_stderr, name=CHECKPOINT_NAME):
    """Restore ``checkpoint`` (a ``tf.train.Checkpoint``) from the newest readable
    checkpoint in ``folder``; ``(prefix, skipped)`` as :func:`newest_readable`.

    A checkpoint is restored only after every one of its tensors read back
    intact (:func:`unreadable_part`), so a broken one assigns nothing.  When
    the restore itself fails, the files are checked again: broken now (they
    changed meanwhile), the next older checkpoint is restored over whatever
    was assigned, and since ``assert_existing_objects_matched`` requires a
    value for every existing variable, every variable then holds the older
    checkpoint's value.  Intact, the checkpoint does not fit the model (a
    variable it lacks, another shape or dtype): :class:`CheckpointDoesNotFitError`,
    never a fall back to an older one.
    ``(None, [])`` when ``folder`` holds no checkpoint; :class:`CheckpointError`
    (nothing assigned, nothing on disk touched) when none is readable.
    """
    folder = os.fspath(folder)
    attempts = _candidates(folder, name, warn)
    for prefix, skipped, older_left in attempts:
        try:
            status = checkpoint.restore(prefix)
            status.assert_existing_objects_matched()
        except MemoryError:
            raise
        except Exception as error:
            problem = unreadable_part(prefix)  # bytes gone bad since the check, or a misfit?
            if problem is None:
                raise CheckpointDoesNotFitError(
                    f"checkpoint: {prefix} in {folder} does not fit the model (another preset, "
                    f"variant, widths, units, classes or network?): {_one_line(error)}"
                ) from None
            skip = Skipped(prefix, *problem)
            skipped.append(skip)
            warn(_warning(skip, older_left))
            continue
        attempts.close()
        return prefix, list(skipped)
    return None, []


# ----------------------------------------------------------------------------- cleaning


_TEMPORARY_CHECKPOINT = re.compile(r"^.+-\d+_temp(?:_[0-9a-f]+)?$")  # <prefix>_temp[_uuid]
_TEMPORARY_STATE = re.compile(rf"^{re.escape(STATE_FILE)}\.tmp[0-9a-f]{{32}}$")
_STAGED_FOLDER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>partial|old)-[A-Za-z0-9_]+$")


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)


def remove_stale_temporaries(model_dir):
    """Remove what interrupted writes left in ``model_dir``, ``model_dir/checkpoints`` and
    ``model_dir/saved_model``; returns the paths removed, sorted.

    - ``<prefix>_temp`` (TensorFlow 2.21) or ``<prefix>_temp_<hex>`` (older
      versions): the parts of a checkpoint whose save did not finish;
    - ``checkpoint.tmp<32 hex>``: a state file whose atomic rewrite did not finish;
    - ``.<name>.partial-XXXX/`` (:func:`dcnet_keras.export.atomic.atomic_folder`'s
      staging folder): an export that did not finish;
    - ``.<name>.old-XXXX/``: the previous export moved aside; if ``<name>``
      itself is gone (killed between the two renames), ``.<name>.old-XXXX/<name>``
      is first renamed back to ``<name>``, so the last complete export survives.

    Call it before the run writes anything, from the one process that owns
    ``model_dir``.
    """
    model_dir = os.fspath(model_dir)
    removed = []
    for folder in (model_dir, os.path.join(model_dir, "checkpoints"),
                   os.path.join(model_dir, "saved_model")):
        if not os.path.isdir(folder):
            continue
        entries = sorted(os.listdir(folder))
        # .old- before .partial-: a restored folder must not race with its staging copy
        for entry in sorted(entries, key=lambda e: ".old-" not in e):
            path = os.path.join(folder, entry)
            staged = _STAGED_FOLDER.match(entry)
            if _TEMPORARY_CHECKPOINT.match(entry) or _TEMPORARY_STATE.match(entry):
                _remove(path)
            elif staged and os.path.isdir(path) and not os.path.islink(path):
                target = os.path.join(folder, staged.group("name"))
                kept = os.path.join(path, staged.group("name"))
                if (staged.group("kind") == "old" and os.path.lexists(kept)
                        and not os.path.lexists(target)):
                    os.replace(kept, target)
                shutil.rmtree(path)
            else:
                continue
            removed.append(path)
    return sorted(removed)


# ----------------------------------------------------------------------------- retention


def _state_lists(folder, names):
    """Whether the state file is readable and lists exactly ``names`` (oldest first)."""
    try:
        state = tf.train.get_checkpoint_state(folder)
    except Exception:  # garbage, empty, not UTF-8: it must be rewritten
        return False
    if state is None:
        return False
    listed = [os.path.basename(p) for p in state.all_model_checkpoint_paths]
    return listed == names and os.path.basename(state.model_checkpoint_path) == names[-1]


def write_state_file(folder, prefixes=None, name=CHECKPOINT_NAME):
    """Rewrite ``<folder>/checkpoint`` (through ``checkpoint.tmp<hex>`` and a rename) to list ``prefixes`` (default: the
    complete checkpoints found by :func:`complete_checkpoints`); remove it when there are
    none.

    The format is the text ``CheckpointState`` protocol buffer that
    ``tf.train.CheckpointManager`` reads::

        model_checkpoint_path: "ckpt-30"          # the newest
        all_model_checkpoint_paths: "ckpt-10"     # oldest first, relative to folder
        all_model_checkpoint_timestamps: 1.7e9    # the .index files' mtimes
        last_preserved_timestamp: 1.7e9           # 1 s before the oldest

    With a timestamp after ``last_preserved_timestamp`` each listed checkpoint is
    one the manager may delete when ``max_to_keep`` says so (oldest first).
    """
    folder = os.fspath(folder)
    if prefixes is None:
        prefixes = complete_checkpoints(folder, name)
    prefixes = sorted(prefixes, key=checkpoint_number)
    path = os.path.join(folder, STATE_FILE)
    if not prefixes:
        if os.path.lexists(path):
            os.remove(path)
        return None
    if _state_lists(folder, [os.path.basename(p) for p in prefixes]):
        return path  # already right: a resume that changes nothing leaves it as it is
    now = time.time()
    stamps = [min(os.path.getmtime(p + ".index"), now) for p in prefixes]
    lines = [f"model_checkpoint_path: {json.dumps(os.path.basename(prefixes[-1]))}"]
    lines += [f"all_model_checkpoint_paths: {json.dumps(os.path.basename(p))}" for p in prefixes]
    lines += [f"all_model_checkpoint_timestamps: {stamp!r}" for stamp in stamps]
    lines.append(f"last_preserved_timestamp: {min(stamps) - 1.0!r}")
    staging = f"{path}.tmp{uuid.uuid4().hex}"  # TensorFlow's own name for it
    try:
        with open(staging, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            os.remove(staging)
    return path


def make_manager(checkpoint, folder, keep=None, name=CHECKPOINT_NAME):
    """A ``tf.train.CheckpointManager`` saving ``checkpoint`` as ``<folder>/<name>-N``.

    ``keep=None`` keeps every checkpoint, as the original scripts do (CIFAR:
    10000, 20000, 30000, 40000 and 42499; ImageNet every 100000): the
    manager's ``max_to_keep=None`` deletes nothing.  ``keep=K`` keeps the
    newest ``K``: each save deletes the oldest beyond ``K``, counting the
    checkpoints already in the folder.

    The manager reads the state file when it is built (an empty or non-UTF-8
    one crashes it; a garbage one makes it forget the checkpoints there), so
    the state file is first rewritten from a scan of the folder
    (:func:`write_state_file`); building the manager deletes nothing.
    """
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, numbers.Integral)
                             or keep < 1):
        raise ValueError(f"keep_checkpoints: expected a positive integer or None (keep "
                         f"every checkpoint), received {keep!r}")
    folder = os.fspath(folder)
    if os.path.isdir(folder):
        write_state_file(folder, name=name)
    return tf.train.CheckpointManager(checkpoint, folder, max_to_keep=keep,
                                      checkpoint_name=name)
