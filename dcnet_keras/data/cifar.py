"""CIFAR-10 and CIFAR-100: one implementation, parameterised by a :class:`CifarFormat`.

A format (``CIFAR10``, ``CIFAR100``; ``FORMATS`` by dataset name) says where the label is and
what the files are called:

============  ===============================================  ============================
              CIFAR-10                                         CIFAR-100
============  ===============================================  ============================
classes       10                                               100 (the fine labels)
binary        ``data_batch_1.bin`` .. ``data_batch_5.bin``     ``train.bin``, ``test.bin``
              (training, concatenated in that order),
              ``test_batch.bin``
record        1 label byte + 3072 image bytes                  2 label bytes (coarse, fine)
                                                               + 3072 image bytes
python        ``data_batch_1`` .. ``data_batch_5``,            ``train``, ``test``;
              ``test_batch``; ``b"labels"``                    ``b"fine_labels"``
archives      ``cifar-10-batches-bin``, ``cifar-10-batches-py``  ``cifar-100-binary``,
                                                               ``cifar-100-python``
tfds          ``cifar10``, field ``label``                     ``cifar100``, field ``label``
============  ===============================================  ============================

(the image bytes and pickles are decoded by :mod:`dcnet_keras.data.cifar_files`).

Sources (``SOURCES``): ``binary``, ``pickle`` (a folder of those files, or the folder the
archive unpacks into one level down), ``tfds`` (tensorflow-datasets; downloads on first use),
``synthetic`` (:func:`dcnet_keras.data.synthetic.synthetic_cifar` with the format's number of
classes, 5000 train / 1000 test images, seed 0; NOT CIFAR) and ``auto``: with ``data_dir``,
whatever it holds (the binary files, the pickles, an archive's unpacked subfolder, or a tfds
data_dir with a ``cifar10`` / ``cifar100`` subfolder); without it, the binary files in
``default_dir`` (the original scripts' ``<repo>/cifar-100-binary``; for CIFAR-10
``<repo>/cifar-10-batches-bin``) if that folder exists, else tfds.

:func:`open_source` (the registry's entry point, ``dcnet_keras.data.registry``) and
:func:`load` return a :class:`CifarSource`: both splits in memory plus the pipelines of
:mod:`dcnet_keras.data.cifar_pipelines`. Every problem is one ``DataError`` line naming the
file (a missing one is named before any file is read), the record and the value.
"""

import dataclasses
import os

import numpy as np

from dcnet_keras.data import cifar_files, cifar_pipelines
from dcnet_keras.data.errors import DataError, first_line
from dcnet_keras.data.synthetic import synthetic_cifar

SOURCES = ("auto", "binary", "pickle", "tfds", "synthetic")
SYNTHETIC_SIZES = (5000, 1000)  # train, test
#: examples per batch when reading tfds; the splits are concatenated from these batches.
TFDS_READ_BATCH = 10000


@dataclasses.dataclass(frozen=True)
class CifarFormat:
    """The file layout of one CIFAR dataset (see the table in the module docstring)."""

    name: str               # dataset (and tfds) name: "cifar10" / "cifar100"
    title: str              # for messages: "CIFAR-10"
    num_classes: int
    label_bytes: int        # label bytes at the start of each binary record
    label_index: int        # which of them is the label used
    label_what: str         # what the label is called in messages: "label" / "fine label"
    binary_train: tuple     # binary training files, read and concatenated in this order
    binary_test: tuple
    pickle_train: tuple
    pickle_test: tuple
    pickle_label_key: str   # b"labels" / b"fine_labels" in the pickled dicts
    binary_folder: str      # the folder the binary archive unpacks into
    pickle_folder: str      # the folder the python archive unpacks into

    @property
    def record_bytes(self):
        return self.label_bytes + cifar_files.IMAGE_BYTES

    def read_binary(self, path):
        """``(uint8 [N, 32, 32, 3] images, int32 [N] labels)`` of one binary file."""
        return cifar_files.read_binary(path, self.label_bytes, self.label_index,
                                       self.num_classes, self.title, self.label_what)

    def read_pickle(self, path):
        """``(uint8 [N, 32, 32, 3] images, int32 [N] labels)`` of one python-version file."""
        return cifar_files.read_pickle(path, self.pickle_label_key, self.num_classes,
                                       self.title, self.label_what)


CIFAR10 = CifarFormat(
    name="cifar10", title="CIFAR-10", num_classes=10, label_bytes=1, label_index=0,
    label_what="label",
    binary_train=tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    binary_test=("test_batch.bin",),
    pickle_train=tuple(f"data_batch_{i}" for i in range(1, 6)), pickle_test=("test_batch",),
    pickle_label_key="labels",
    binary_folder="cifar-10-batches-bin", pickle_folder="cifar-10-batches-py")

CIFAR100 = CifarFormat(
    name="cifar100", title="CIFAR-100", num_classes=100, label_bytes=2, label_index=1,
    label_what="fine label",
    binary_train=("train.bin",), binary_test=("test.bin",),
    pickle_train=("train",), pickle_test=("test",), pickle_label_key="fine_labels",
    binary_folder="cifar-100-binary", pickle_folder="cifar-100-python")

FORMATS = {f.name: f for f in (CIFAR10, CIFAR100)}


def get_format(name):
    """The :class:`CifarFormat` of dataset ``name`` (``cifar10`` or ``cifar100``)."""
    try:
        return FORMATS[name]
    except (KeyError, TypeError):
        raise DataError(f"--dataset: no CIFAR format {name!r}; expected one of "
                        f"{', '.join(FORMATS)}") from None


# --------------------------------------------------------------------------- the DataSource



@dataclasses.dataclass(eq=False)
class CifarSource:
    """Both splits in memory and their pipelines (protocol: ``dcnet_keras.data.registry``).

    Images uint8 [N, 32, 32, 3], labels int32 [N] in 0..num_classes-1. ``kind``: the source
    read (``binary``, ``pickle``, ``tfds``, ``synthetic``).
    """

    description: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    num_classes: int
    kind: str
    name: str = ""

    #: the training checkpoint holds the input iterator (position and shuffle buffer).
    checkpoint_input = True

    def __repr__(self):
        return (f"CifarSource({self.name!r}, {self.kind!r}, train={self.train_images.shape[0]}, "
                f"test={self.test_images.shape[0]})")

    def train_dataset(self, batch_size, seed, start=0, augmentation="pad_crop_flip",
                      shuffle_buffer=20000):
        """Endless augmented batches (:func:`cifar_pipelines.train_dataset`).

        ``start`` is ignored: the checkpoint holds the input position (``checkpoint_input``),
        so a resumed run restores the iterator instead of reseeding.
        """
        del start
        return cifar_pipelines.train_dataset(self.train_images, self.train_labels, batch_size,
                                             seed, shuffle_buffer=shuffle_buffer,
                                             augmentation=augmentation)

    def test_dataset(self, batch_size=100):
        """One ordered pass over the test split (:func:`cifar_pipelines.test_dataset`)."""
        return cifar_pipelines.test_dataset(self.test_images, self.test_labels, batch_size)

    def explain(self, error):
        """The first line of ``error`` (the data were checked when read; no files to scan)."""
        return first_line(error)


def _source(fmt, kind, description, train, test):
    return CifarSource(description, train[0], train[1], test[0], test[1], fmt.num_classes,
                       kind, fmt.name)


# --------------------------------------------------------------------------- file sources


def _require_folder(folder, fmt, kind):
    if folder is None:
        raise DataError(f"--data_dir: source {kind!r} of {fmt.title} needs a data folder")
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise DataError(f"{fmt.title} data folder not found: {folder}")
    return folder


def _has_any(folder, names):
    return any(os.path.isfile(os.path.join(folder, n)) for n in names)


def _read_folder(fmt, folder, kind):
    """Both splits of the ``kind`` ("binary"/"pickle") files in ``folder`` (or its archive
    subfolder when ``folder`` holds none of them)."""
    folder = _require_folder(folder, fmt, kind)
    if kind == "binary":
        train, test, sub = fmt.binary_train, fmt.binary_test, fmt.binary_folder
        reader, what, label = fmt.read_binary, f"{fmt.title} binary file", "binary files"
    else:
        train, test, sub = fmt.pickle_train, fmt.pickle_test, fmt.pickle_folder
        reader, what = fmt.read_pickle, f"{fmt.title} python-version file"
        label = "python-version files"
    if not _has_any(folder, train + test) and os.path.isdir(os.path.join(folder, sub)):
        folder = os.path.join(folder, sub)
    paths = [os.path.join(folder, name) for name in train + test]
    for path in paths:  # name a missing file before reading 150 MB
        if not os.path.isfile(path):
            raise DataError(f"{what} not found: {path}")
    train_split = cifar_files.read_files(paths[:len(train)], reader, what)
    test_split = cifar_files.read_files(paths[len(train):], reader, what)
    return _source(fmt, kind, f"{fmt.title} {label} in {os.path.abspath(folder)}",
                   train_split, test_split)


def load_binary(fmt, folder):
    """:class:`CifarSource` of the binary files in ``folder`` (or its ``binary_folder``)."""
    return _read_folder(fmt, folder, "binary")


def load_pickle(fmt, folder):
    """:class:`CifarSource` of the python-version files in ``folder`` (or its ``pickle_folder``)."""
    return _read_folder(fmt, folder, "pickle")


# --------------------------------------------------------------------------- tfds


#: retries of a failing tfds download (tfds's own default, 10 with exponential back-off,
#: keeps an offline machine waiting about 3.5 minutes before the error).
TFDS_DOWNLOAD_RETRIES = 3


def _import_tfds():
    import tensorflow_datasets as tfds  # slow to import; only when asked for
    from tensorflow_datasets.core.download import downloader

    downloader.MAX_RETRIES = min(getattr(downloader, "MAX_RETRIES", 0), TFDS_DOWNLOAD_RETRIES)
    return tfds


def _names(names):
    """``"a"``, or ``"a .. e"`` for a numbered series."""
    return names[0] if len(names) == 1 else f"{names[0]} .. {names[-1]}"


def _folder_hint(fmt):
    return (f"--data_dir with a {fmt.title} binary ({_names(fmt.binary_train)}, "
            f"{_names(fmt.binary_test)}) or python ({_names(fmt.pickle_train)}, "
            f"{_names(fmt.pickle_test)}) folder, or use --source synthetic")


def _tfds_arrays(tfds, dataset, where):
    """Concatenated ``image`` and ``label`` arrays of a batched tfds split."""
    images, labels = [], []
    for batch in tfds.as_numpy(dataset):
        try:
            images.append(np.asarray(batch["image"]))
            labels.append(np.asarray(batch["label"]))
        except (KeyError, TypeError, IndexError) as e:
            raise DataError(f"{where}: no 'image'/'label' fields ({type(e).__name__}: "
                            f"{first_line(e)})") from e
    if not images:
        raise DataError(f"{where}: no images")
    return np.concatenate(images), np.concatenate(labels)


def load_tfds(fmt, data_dir=None):
    """:class:`CifarSource` of tensorflow-datasets ``fmt.name`` (downloads on first use).

    ``tfds.load(name, split=["train", "test"], batch_size=TFDS_READ_BATCH, data_dir=...)``, the
    batches concatenated in order: the same arrays as ``batch_size=-1`` (one batch of the whole
    split), which under ``tfds.testing.mock_data`` asks for a batch of ``sys.maxsize`` examples
    (the mock has no split sizes) and aborts the process. Any failure (no package, no network,
    a corrupt cache) is one ``DataError`` line naming the dataset and data_dir.
    """
    data_dir = None if data_dir is None else os.fspath(data_dir)
    where = f"tfds {fmt.name!r} (data_dir={data_dir or 'default ~/tensorflow_datasets'})"
    try:
        tfds = _import_tfds()
    except Exception as e:  # ImportError, or an error inside the package's own imports
        raise DataError(f"could not import tensorflow_datasets for {where}: {type(e).__name__}: "
                        f"{first_line(e)}; install the requirements (pip install -r "
                        f"requirements.txt), or pass {_folder_hint(fmt)}") from e
    try:
        splits = tfds.load(fmt.name, split=["train", "test"], batch_size=TFDS_READ_BATCH,
                           as_supervised=False, data_dir=data_dir)
        arrays = [_tfds_arrays(tfds, ds, f"{where} {split}")
                  for split, ds in zip(("train", "test"), splits)]
    except DataError:
        raise
    except Exception as e:  # download, network, corrupt cache ...
        raise DataError(f"could not load {where}: {type(e).__name__}: {first_line(e)}; "
                        f"without network access pass {_folder_hint(fmt)}") from e
    checked = []
    for split, (images, labels) in zip(("train", "test"), arrays):
        at = f"{where} {split}"
        if images.ndim != 4 or images.shape[1:] != cifar_files.IMAGE_SHAPE \
                or images.dtype != np.uint8:
            raise DataError(f"{at}: images have shape {images.shape} and dtype {images.dtype}, "
                            f"expected uint8 [N, 32, 32, 3]")
        labels = cifar_files.check_labels(labels, fmt.num_classes, at, fmt.label_what)
        if labels.shape[0] != images.shape[0]:
            raise DataError(f"{at}: {images.shape[0]} images but {labels.shape[0]} labels")
        checked.append((images, labels))
    return _source(fmt, "tfds", f"tensorflow-datasets {where[5:]}", *checked)


# --------------------------------------------------------------------------- synthetic


def load_synthetic(fmt, num_train=SYNTHETIC_SIZES[0], num_test=SYNTHETIC_SIZES[1], seed=0):
    """:class:`CifarSource` of ``synthetic_cifar`` with ``fmt.num_classes`` classes."""
    xtr, ytr, xte, yte = synthetic_cifar(num_train, num_test, fmt.num_classes, seed)
    return _source(fmt, "synthetic",
                   f"synthetic CIFAR-shaped data (seed {seed}, {num_train} train / {num_test} "
                   f"test images, {fmt.num_classes} classes); NOT {fmt.title}",
                   (xtr, ytr), (xte, yte))


# --------------------------------------------------------------------------- auto


def detect(fmt, folder):
    """``(kind, folder)``: what ``folder`` holds for ``fmt``, else one ``DataError`` line.

    In this order: any of the binary files (``binary``), any of the python files
    (``pickle``), the archives' subfolders, a tfds ``<name>`` subfolder (``tfds``, with
    ``folder`` as data_dir). A partial set is taken, so that loading names the missing file.
    """
    folder = _require_folder(folder, fmt, "auto")
    if _has_any(folder, fmt.binary_train + fmt.binary_test):
        return "binary", folder
    if _has_any(folder, fmt.pickle_train + fmt.pickle_test):
        return "pickle", folder
    for sub, kind in ((fmt.binary_folder, "binary"), (fmt.pickle_folder, "pickle")):
        if os.path.isdir(os.path.join(folder, sub)):
            return kind, os.path.join(folder, sub)
    if os.path.isdir(os.path.join(folder, fmt.name)):
        return "tfds", folder
    hint = ""
    for other in FORMATS.values():
        if other is not fmt and (_has_any(folder, other.binary_train + other.pickle_train) or
                                 os.path.isdir(os.path.join(folder, other.binary_folder)) or
                                 os.path.isdir(os.path.join(folder, other.pickle_folder))):
            hint = f" (it holds {other.title} files: --dataset {other.name})"
    raise DataError(
        f"{folder}: no {fmt.title} data found{hint}; expected {_names(fmt.binary_train)} and "
        f"{_names(fmt.binary_test)} (binary version), {_names(fmt.pickle_train)} and "
        f"{_names(fmt.pickle_test)} (python version), a {fmt.binary_folder} or "
        f"{fmt.pickle_folder} subfolder, or a tensorflow-datasets {fmt.name} subfolder")


def load(name, source="auto", data_dir=None, default_dir=None):
    """The :class:`CifarSource` of dataset ``name`` (``cifar10``/``cifar100``) from ``source``.

    source (``SOURCES``):
      - ``"auto"``: with ``data_dir``, what :func:`detect` finds there; without it, the binary
        files in ``default_dir`` if that folder exists, else tfds (downloads on first use).
      - ``"binary"``: ``data_dir``, or ``default_dir`` when ``data_dir`` is None.
      - ``"pickle"``: ``data_dir``.
      - ``"tfds"``: tensorflow-datasets ``name`` with ``data_dir`` as its data_dir.
      - ``"synthetic"``: :func:`load_synthetic` (``data_dir`` ignored).
    """
    fmt = get_format(name)
    if source not in SOURCES:
        raise DataError(f"--source: dataset {name!r} has no source {source!r}; expected one of "
                        f"{', '.join(SOURCES)}")
    if source == "synthetic":
        return load_synthetic(fmt)
    if source == "binary":
        return load_binary(fmt, data_dir if data_dir is not None else default_dir)
    if source == "pickle":
        return load_pickle(fmt, data_dir)
    if source == "tfds":
        return load_tfds(fmt, data_dir)
    if data_dir is None:  # auto
        if default_dir is not None and os.path.isdir(default_dir):
            return load_binary(fmt, default_dir)
        return load_tfds(fmt, None)
    kind, folder = detect(fmt, data_dir)
    return {"binary": load_binary, "pickle": load_pickle, "tfds": load_tfds}[kind](fmt, folder)


def open_source(spec, source, data_dir, default_dir):
    """The registry's entry point: :func:`load` of ``spec.name`` (a ``DatasetSpec``)."""
    fmt = get_format(spec.name)
    if getattr(spec, "num_classes", fmt.num_classes) != fmt.num_classes:
        raise DataError(f"dataset {spec.name!r}: the registry says {spec.num_classes} classes, "
                        f"the {fmt.title} format has {fmt.num_classes}")
    return load(spec.name, source, data_dir, default_dir)
