"""Datasets: digits, IDX (MNIST format), CIFAR pickles, the spec, and the batch iterator."""

from __future__ import annotations

import gzip
import json
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from snnpipe.pipeline.data import (
    DATASETS,
    FASHION_MNIST_DIR,
    IDX_IMAGES_MAGIC,
    IDX_LABELS_MAGIC,
    DataError,
    DataSpec,
    iterate_batches,
    load_dataset,
    register_dataset,
)


def write_idx(path: Path, magic: int, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file, gzipped when the name ends in .gz."""
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + np.asarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
    return path


@pytest.fixture
def idx_dir(tmp_path: Path) -> Path:
    """Six 4x5 training images (gzipped), each one grey level k*51 with label k; three raw test images."""
    levels = np.arange(6)
    train_images = np.repeat(levels * 51, 20).reshape(6, 4, 5)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", IDX_IMAGES_MAGIC, train_images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", IDX_LABELS_MAGIC, levels)
    test_images = np.stack([np.arange(20).reshape(4, 5) + i for i in range(3)])
    write_idx(tmp_path / "t10k-images-idx3-ubyte", IDX_IMAGES_MAGIC, test_images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", IDX_LABELS_MAGIC, np.array([9, 0, 4]))
    return tmp_path


# --- digits -------------------------------------------------------------------------------------


def test_digits_shapes_range_and_split_sizes():
    data = load_dataset("digits")
    assert data.train_x.shape == (1437, 1, 8, 8) and data.test_x.shape == (360, 1, 8, 8)  # ceil(0.2 * 1797)
    assert data.train_x.dtype == torch.float32 and data.train_y.dtype == torch.int64
    assert data.train_x.min() == 0 and data.train_x.max() == 1
    assert torch.equal(data.train_x * 16, (data.train_x * 16).round())  # pixels 0..16 divided by 16
    assert data.spec == DataSpec("digits", (1, 8, 8), 10, data.spec.mean, data.spec.std)
    assert data.spec.mean[0] == pytest.approx(data.train_x.double().mean().item(), abs=1e-6)
    assert data.spec.std[0] == pytest.approx(data.train_x.double().std(correction=0).item(), abs=1e-6)


def test_digits_split_is_seeded():
    first, again = load_dataset("digits", seed=3), load_dataset("digits", seed=3)
    other = load_dataset("digits", seed=4)
    assert torch.equal(first.train_x, again.train_x) and torch.equal(first.test_y, again.test_y)
    assert not torch.equal(first.train_x, other.train_x)


def test_digits_split_is_stratified():
    data = load_dataset("digits", seed=1)
    test_counts = torch.bincount(data.test_y, minlength=10)
    all_counts = test_counts + torch.bincount(data.train_y, minlength=10)
    assert (test_counts > 0).all()
    assert ((test_counts - 0.2 * all_counts).abs() <= 1).all()


# --- IDX (mnist, fashion-mnist) -----------------------------------------------------------------


def test_mnist_reads_gzipped_and_raw_idx(idx_dir: Path):
    data = load_dataset("mnist", idx_dir)
    assert data.spec.name == "mnist" and data.spec.input_shape == (1, 4, 5) and data.spec.num_classes == 10
    assert data.train_x.shape == (6, 1, 4, 5) and data.test_x.shape == (3, 1, 4, 5)
    assert torch.equal(data.train_y, torch.arange(6)) and data.test_y.tolist() == [9, 0, 4]
    assert torch.allclose(data.train_x[:, 0, 0, 0], torch.arange(6) * 0.2)
    assert data.test_x[1, 0, 1, 2].item() == pytest.approx(8 / 255)  # row 1, column 2 of image 1: 5 + 2 + 1
    # grey levels 0, 0.2, ..., 1: mean 0.5, population std 0.2 * sqrt(35 / 12)
    assert data.spec.mean == pytest.approx((0.5,))
    assert data.spec.std == pytest.approx((0.2 * math.sqrt(35 / 12),))


def test_fashion_mnist_reads_idx_from_data_dir(idx_dir: Path):
    assert load_dataset("fashion-mnist", idx_dir).spec.name == "fashion-mnist"


def test_idx_wrong_magic_names_the_file(idx_dir: Path):
    write_idx(idx_dir / "t10k-images-idx3-ubyte", IDX_LABELS_MAGIC, np.zeros(3))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte is not an IDX images file"):
        load_dataset("mnist", idx_dir)


@pytest.mark.parametrize("name", ["t10k-images-idx3-ubyte", "train-images-idx3-ubyte.gz"])
def test_idx_truncated_file_names_the_file(idx_dir: Path, name: str):
    path = idx_dir / name
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DataError, match=name):
        load_dataset("mnist", idx_dir)


def _write_header(path: Path, magic: int, dims: tuple[int, ...], data: bytes = b"") -> None:
    payload = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + data
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)


def test_idx_sizes_whose_product_wraps_are_refused_before_reading(idx_dir: Path):
    # 2^31 * 2^31 * 4 = 2^64: 0 in 64-bit arithmetic; 9 bytes a value once loaded: 9 * 2^64 bytes
    _write_header(idx_dir / "t10k-images-idx3-ubyte", IDX_IMAGES_MAGIC, (2**31, 2**31, 4))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte \(its header declares sizes \(2147483648, "
                                           r"2147483648, 4\)\) needs about 166020696663\.4 GB .* at most 90%"):
        load_dataset("mnist", idx_dir)


def test_idx_sizes_with_a_zero_are_refused(idx_dir: Path):
    _write_header(idx_dir / "t10k-images-idx3-ubyte", IDX_IMAGES_MAGIC, (0, 4, 5))
    _write_header(idx_dir / "t10k-labels-idx1-ubyte", IDX_LABELS_MAGIC, (0,))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte declares sizes \(0, 4, 5\), which hold no data"):
        load_dataset("mnist", idx_dir)


def test_a_gzip_that_inflates_past_its_header_is_not_read_to_the_end(idx_dir: Path):
    import tracemalloc

    # 3 images of 4x5 declared; 100 MB of zeros behind them (a 100 KB file)
    _write_header(idx_dir / "train-images-idx3-ubyte.gz", IDX_IMAGES_MAGIC, (3, 4, 5), bytes(60 + 100 * 2**20))
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="has more data bytes but its header"):
            load_dataset("mnist", idx_dir)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20, peak  # the header's 60 bytes and one more were read, not 100 MB


def test_idx_count_mismatch_names_both_files(idx_dir: Path):
    write_idx(idx_dir / "t10k-labels-idx1-ubyte", IDX_LABELS_MAGIC, np.array([1, 2]))
    with pytest.raises(DataError, match="holds 3 images but .*t10k-labels-idx1-ubyte holds 2 labels"):
        load_dataset("mnist", idx_dir)


def test_idx_label_out_of_range(idx_dir: Path):
    write_idx(idx_dir / "t10k-labels-idx1-ubyte", IDX_LABELS_MAGIC, np.array([1, 10, 2]))
    with pytest.raises(DataError, match=r"labels 1\.\.10; expected 0\.\.9"):
        load_dataset("mnist", idx_dir)


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_idx_missing_folder_lists_the_expected_files(tmp_path: Path, dataset: str):
    with pytest.raises(DataError) as caught:
        load_dataset(dataset, tmp_path / "absent")
    message = str(caught.value)
    assert "\n" not in message
    for kind in ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1"):
        assert f"{kind}-ubyte" in message
    if dataset == "fashion-mnist":
        assert "apt-get install dataset-fashion-mnist" in message


def test_mnist_without_data_dir_says_which_files():
    with pytest.raises(DataError, match="mnist needs --data-dir.*t10k-labels-idx1-ubyte"):
        load_dataset("mnist")


def test_fashion_mnist_from_the_debian_package():
    if not FASHION_MNIST_DIR.is_dir():
        pytest.skip("dataset-fashion-mnist not installed")
    data = load_dataset("fashion-mnist")
    assert data.train_x.shape == (60000, 1, 28, 28) and data.test_x.shape == (10000, 1, 28, 28)
    assert data.train_x.dtype == torch.float32 and data.train_x.min() >= 0 and data.train_x.max() <= 1
    assert (torch.bincount(data.train_y) == 6000).all() and (torch.bincount(data.test_y) == 1000).all()
    assert data.spec.mean == pytest.approx((0.2860,), abs=1e-4)  # the published Fashion-MNIST statistics
    assert data.spec.std == pytest.approx((0.3530,), abs=1e-4)


# --- CIFAR --------------------------------------------------------------------------------------


def cifar_row(k: int) -> np.ndarray:
    """Image k as a CIFAR row: 3072 bytes, channel-major (R plane, G plane, B plane), row-major planes."""
    return ((np.arange(3072) + k) % 256).astype(np.uint8)


def write_cifar_file(path: Path, rows: list[int], labels: list[int], label_key: bytes, protocol: int) -> None:
    content = {
        b"batch_label": b"test",
        b"data": np.stack([cifar_row(k) for k in rows]),
        label_key: labels,
        b"filenames": [f"{k}.png".encode() for k in rows],
    }
    path.write_bytes(pickle.dumps(content, protocol=protocol))


def write_cifar10(parent: Path, protocol: int = 2) -> Path:
    """Batches 1..5 of two images each, labels 0..9 in order; a test batch of two (labels 3, 7)."""
    folder = parent / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for b in range(1, 6):
        pair = [2 * b - 2, 2 * b - 1]
        write_cifar_file(folder / f"data_batch_{b}", pair, pair, b"labels", protocol)
    write_cifar_file(folder / "test_batch", [100, 101], [3, 7], b"labels", protocol)
    return folder


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar10_reads_the_python_batches(tmp_path: Path, protocol: int):
    write_cifar10(tmp_path, protocol)
    data = load_dataset("cifar10", tmp_path)
    assert data.spec.input_shape == (3, 32, 32) and data.spec.num_classes == 10 and len(data.spec.mean) == 3
    assert data.train_x.shape == (10, 3, 32, 32) and data.test_x.shape == (2, 3, 32, 32)
    assert torch.equal(data.train_y, torch.arange(10)) and data.test_y.tolist() == [3, 7]
    assert data.train_x[0, 0, 1, 2].item() == pytest.approx(34 / 255)  # R plane, row 1, column 2
    assert data.train_x[0, 1, 0, 0].item() == 0  # G plane starts at byte 1024 = 0 mod 256
    assert torch.equal(data.test_x[1], torch.from_numpy(cifar_row(101).reshape(3, 32, 32)).float() / 255)


def test_cifar10_accepts_the_folder_itself(tmp_path: Path):
    folder = write_cifar10(tmp_path)
    assert load_dataset("cifar10", folder).train_x.shape == (10, 3, 32, 32)


@pytest.mark.parametrize("remove", [None, "data_batch_3", "test_batch"])
def test_cifar10_missing_files_name_the_layout(tmp_path: Path, remove: str | None):
    if remove:
        (write_cifar10(tmp_path) / remove).unlink()
    with pytest.raises(DataError, match=r"cifar-10-batches-py/data_batch_1\.\.5 and test_batch"):
        load_dataset("cifar10", tmp_path)


def test_cifar_needs_data_dir():
    with pytest.raises(DataError, match="cifar100 needs --data-dir.*cifar-100-python/train and test"):
        load_dataset("cifar100")


def test_cifar_damaged_file_names_it(tmp_path: Path):
    folder = write_cifar10(tmp_path)
    (folder / "test_batch").write_bytes(b"\x80\x02garbage")
    with pytest.raises(DataError, match="test_batch is not a python-version CIFAR file"):
        load_dataset("cifar10", tmp_path)


class _MakesDirectory:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return os.mkdir, (str(self.path),)


def test_cifar_pickle_cannot_run_code(tmp_path: Path):
    folder = write_cifar10(tmp_path)
    marker = tmp_path / "made-by-unpickling"
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": _MakesDirectory(marker), b"labels": [0]}))
    with pytest.raises(DataError, match="test_batch"):
        load_dataset("cifar10", tmp_path)
    assert not marker.exists()


def test_cifar100_reads_fine_labels(tmp_path: Path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    write_cifar_file(folder / "train", [0, 1, 2, 3], [0, 42, 99, 7], b"fine_labels", 4)
    write_cifar_file(folder / "test", [4, 5], [5, 98], b"fine_labels", 4)
    data = load_dataset("cifar100", tmp_path)
    assert data.spec.num_classes == 100 and data.spec.input_shape == (3, 32, 32)
    assert data.train_y.tolist() == [0, 42, 99, 7] and data.test_y.tolist() == [5, 98]
    assert data.train_x.shape == (4, 3, 32, 32) and data.train_x.dtype == torch.float32
    assert data.train_x[3, 0, 0, 0].item() == pytest.approx(3 / 255)


def test_cifar100_label_out_of_range(tmp_path: Path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    write_cifar_file(folder / "train", [0], [100], b"fine_labels", 4)
    write_cifar_file(folder / "test", [0], [0], b"fine_labels", 4)
    with pytest.raises(DataError, match=r"train holds labels 100\.\.100; expected 0\.\.99"):
        load_dataset("cifar100", tmp_path)


# --- registry, spec -----------------------------------------------------------------------------


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DataError, match="choose one of digits, fashion-mnist, mnist, cifar10, cifar100"):
        load_dataset("imagenet")


def test_register_dataset_refuses_a_duplicate():
    with pytest.raises(ValueError, match="'digits' is already registered"):
        register_dataset("digits", input_shape=(1, 8, 8), num_classes=10, model="mlp", epochs=1, batch_size=1)(
            lambda data_dir, seed: None)
    assert len(load_dataset("digits").test_y) == 360  # the real digits, not the refused loader


def test_a_new_dataset_brings_its_own_training_defaults_and_shape():
    """One registration is all a dataset needs: training defaults, the NIR importer's guess."""
    from snnpipe.pipeline.config import TrainConfig
    from snnpipe.pipeline.importer import _guess_dataset

    register_dataset("tiny", input_shape=(2, 3, 3), num_classes=7, model="convnet", epochs=3, batch_size=5)(
        lambda data_dir, seed: None)
    try:
        config = TrainConfig(dataset="tiny").resolved()
        assert (config.model, config.epochs, config.batch_size) == ("convnet", 3, 5)
        assert _guess_dataset((2, 3, 3), None, 7) == "tiny"
        assert _guess_dataset(None, 18, 7) == "tiny"
    finally:
        del DATASETS["tiny"]
    with pytest.raises(DataError, match="unknown dataset 'none'"):
        TrainConfig(dataset="none").resolved()


def test_data_spec_round_trips_through_json():
    spec = DataSpec("cifar10", (3, 32, 32), 10, (0.49, 0.48, 0.45), (0.25, 0.24, 0.26))
    raw = json.loads(json.dumps(spec.to_dict()))
    assert raw == {"name": "cifar10", "input_shape": [3, 32, 32], "num_classes": 10,
                   "mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26], "split_seed": 0}
    assert DataSpec.from_dict(raw) == spec


def test_the_split_seed_is_the_loaders_and_an_older_checkpoint_keeps_its_runs(tmp_path):
    from snnpipe.models import NeuronParams, create_model
    from snnpipe.pipeline.checkpoint import Checkpoint

    data = load_dataset("digits", seed=3)
    assert data.spec.split_seed == 3
    assert not torch.equal(data.test_x, load_dataset("digits", seed=0).test_x)  # the seed makes the split
    model = create_model("mlp", input_shape=(1, 8, 8), hidden=(4,))
    ckpt = Checkpoint("mlp", {"hidden": (4,)}, True, NeuronParams(), 4, "direct", data.spec, model.state_dict())
    raw = ckpt.to_dict()
    del raw["data"]["split_seed"]  # as written before checkpoints kept it: the training's seed split the data
    torch.save({**raw, "training": {"config": {"seed": 3}}}, tmp_path / "old.pt")
    torch.save({**raw, "training": None}, tmp_path / "imported.pt")
    assert Checkpoint.load(tmp_path / "old.pt").data == data.spec
    assert Checkpoint.load(tmp_path / "imported.pt").data.split_seed == 0


@pytest.mark.parametrize(
    "field, kwargs",
    [
        ("input_shape", dict(input_shape=(1, 0, 8))),
        ("input_shape", dict(input_shape=(8, 8))),
        ("num_classes", dict(num_classes=1)),
        ("mean", dict(mean=(0.5, 0.5))),
        ("std", dict(std=())),
        ("std", dict(std=(0.0,))),
        ("split_seed", dict(split_seed=-5)),
        ("split_seed", dict(split_seed=2**32)),
    ],
)
def test_data_spec_rejects_bad_fields(field: str, kwargs: dict):
    good = dict(name="digits", input_shape=(1, 8, 8), num_classes=10, mean=(0.3,), std=(0.4,))
    with pytest.raises(ValueError, match=field):
        DataSpec(**{**good, **kwargs})


# --- batches ------------------------------------------------------------------------------------


def test_iterate_batches_in_order_keeps_the_last_partial_batch():
    x, y = torch.arange(10.0).view(10, 1), torch.arange(10)
    batches = list(iterate_batches(x, y, 4, shuffle=False))
    assert [len(b) for _, b in batches] == [4, 4, 2]
    assert torch.equal(torch.cat([b for _, b in batches]), y)


def test_iterate_batches_shuffled_covers_every_index_once_and_is_seeded():
    x, y = torch.arange(10.0).view(10, 1), torch.arange(10)

    def epoch(seed: int) -> list[torch.Tensor]:
        generator = torch.Generator().manual_seed(seed)
        return [b for _, b in iterate_batches(x, y, 3, shuffle=True, generator=generator)]

    first = epoch(0)
    assert [len(b) for b in first] == [3, 3, 3, 1]
    order = torch.cat(first)
    assert sorted(order.tolist()) == list(range(10)) and not torch.equal(order, y)
    assert all(torch.equal(a, b) for a, b in zip(first, epoch(0), strict=True))
    assert not torch.equal(order, torch.cat(epoch(1)))
    for xb, yb in iterate_batches(x, y, 3, shuffle=True, generator=torch.Generator().manual_seed(0)):
        assert torch.equal(xb[:, 0].long(), yb)  # images stay with their labels


def test_iterate_batches_rejects_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        list(iterate_batches(torch.zeros(3, 1), torch.zeros(3), 0, shuffle=False))
    with pytest.raises(ValueError, match="3 items but y has 2"):
        list(iterate_batches(torch.zeros(3, 1), torch.zeros(2), 2, shuffle=False))


def test_the_digits_split_is_scikit_learns_index_for_index():
    """`stratified_split` against scikit-learn's train_test_split(stratify=...), the oracle."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from snnpipe.pipeline.data import stratified_split

    digits = load_digits()
    for seed in (0, 1, 7):
        train, test = train_test_split(np.arange(len(digits.target)), test_size=0.2, random_state=seed,
                                       stratify=digits.target)
        ours = stratified_split(digits.target, 0.2, seed)
        assert np.array_equal(ours[0], train) and np.array_equal(ours[1], test)
        loaded = load_dataset("digits", seed=seed)
        assert torch.equal(loaded.test_x, torch.from_numpy(digits.images[test][:, None] / 16.0).float())
        assert torch.equal(loaded.train_y, torch.from_numpy(digits.target[train]))
    labels = np.random.RandomState(3).randint(0, 5, size=97)  # uneven classes: remainders and ties
    for fraction in (0.2, 0.33, 0.5):
        train, test = train_test_split(np.arange(97), test_size=fraction, random_state=4, stratify=labels)
        ours = stratified_split(labels, fraction, 4)
        assert np.array_equal(ours[0], train) and np.array_equal(ours[1], test)


def test_digits_load_without_importing_scikit_learn():
    code = "import sys; from snnpipe.pipeline.data import load_dataset; load_dataset('digits'); print('sklearn' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "False", done.stderr
