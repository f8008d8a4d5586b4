"""IDX files, image sources, permuted pixels and CNNs built from config."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest
import torch
from conftest import tiny_digit_images, write_idx

from nnexp.data import idx
from nnexp.data.images import IdxImageSource, pixel_permutation
from nnexp.errors import ConfigError, DataError
from nnexp.models.cnn import CNN


def test_idx_round_trip_gz_and_plain(tmp_path):
    images, labels = tiny_digit_images(20, 0)
    write_idx(tmp_path / "a.gz", images)
    write_idx(tmp_path / "b", labels)
    assert np.array_equal(idx.decode_idx(gzip.decompress((tmp_path / "a.gz").read_bytes()), "a"), images)
    assert np.array_equal(idx.decode_idx((tmp_path / "b").read_bytes(), "b"), labels)


def test_truncated_and_garbage_files_are_data_errors(tmp_path):
    images, _ = tiny_digit_images(5, 0)
    write_idx(tmp_path / "x", images)
    with pytest.raises(DataError, match="corrupt or truncated"):
        idx.decode_idx((tmp_path / "x").read_bytes()[:-10], "x")
    with pytest.raises(DataError, match="not an IDX file"):
        idx.decode_idx(b"PK\x03\x04 definitely a zip", "x")
    (tmp_path / "y.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="not a readable gzip file"):
        idx.load_array(tmp_path / "y.gz", "tiny", tmp_path / "cache")


def test_known_dataset_with_wrong_checksum_is_refused(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    images, labels = tiny_digit_images(10, 0)
    for stem, array in (("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels),
                        ("t10k-images-idx3-ubyte", images), ("t10k-labels-idx1-ubyte", labels)):
        write_idx(folder / f"{stem}.gz", array)
    with pytest.raises(DataError, match=r"fails its checksum \(MD5 is not f68b3c2dcbeaaa9fbdd348bbdeb94873\)"):
        idx.load_idx_dataset(tmp_path, "mnist")


def test_checksum_is_verified_against_the_published_sums(tmp_path, monkeypatch):
    images, _ = tiny_digit_images(10, 0)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, images)
    monkeypatch.setitem(idx.KNOWN_MD5, "tiny", {path.name: hashlib.md5(path.read_bytes()).hexdigest()})
    assert np.array_equal(idx.load_array(path, "tiny", tmp_path / "cache"), images)


def test_missing_files_say_what_to_do(tmp_path):
    with pytest.raises(DataError) as error:
        idx.load_idx_dataset(tmp_path, "fashion_mnist")
    message = str(error.value)
    for name in idx.FILES.values():
        assert f"{name}.gz" in message
    assert "data.root" in message and "NNEXP_DATA" in message and "zalandoresearch/fashion-mnist" in message
    assert f"mkdir -p {tmp_path / 'fashion_mnist'}" in message and "curl -fLO http://fashion-mnist" in message


def test_decoded_arrays_are_cached(tiny_idx_root, monkeypatch):
    first = idx.load_idx_dataset(tiny_idx_root, "kmnist")
    monkeypatch.setattr(idx, "decode_idx", lambda *a: pytest.fail("decoded again instead of read from the cache"))
    second = idx.load_idx_dataset(tiny_idx_root, "kmnist")
    assert all(np.array_equal(first[key], second[key]) for key in first)
    assert (tiny_idx_root / "kmnist" / ".nnexp-cache").is_dir()


def test_permutation_is_fixed_and_shared_by_train_and_test(tiny_idx_root):
    plain = IdxImageSource(dataset="mnist", root=str(tiny_idx_root), name="mnist").load()
    permuted = IdxImageSource(dataset="mnist", root=str(tiny_idx_root), name="p", permute_pixels=True).load()
    again = IdxImageSource(dataset="mnist", root=str(tiny_idx_root), name="p", permute_pixels=True).load()
    order = np.random.RandomState(42).permutation(28 * 28)  # the lecture's permutation
    assert np.array_equal(pixel_permutation(28 * 28, 42), order)
    assert np.array_equal(permuted.X_train, again.X_train) and np.array_equal(permuted.X_test, again.X_test)
    assert np.array_equal(permuted.X_train.reshape(300, -1), plain.X_train.reshape(300, -1)[:, order])
    assert np.array_equal(permuted.X_test.reshape(100, -1), plain.X_test.reshape(100, -1)[:, order])
    assert not np.array_equal(permuted.X_train, plain.X_train)
    other = IdxImageSource(dataset="mnist", root=str(tiny_idx_root), name="p", permute_pixels=True, permutation_seed=7).load()
    assert not np.array_equal(other.X_train, permuted.X_train)


def test_limits_take_stratified_subsets(tiny_idx_root):
    bundle = IdxImageSource(dataset="mnist", root=str(tiny_idx_root), name="m", limit_train=50, limit_test=20).load()
    assert bundle.X_train.shape == (50, 1, 28, 28) and len(bundle.y_test) == 20
    assert np.bincount(bundle.y_train).tolist() == [5] * 10


def test_default_cnn_parameter_count_matches_a_hand_count():
    blocks = [dict(filters=32, kernel=3, pool=2), dict(filters=32, kernel=3, pool=2)]
    net = CNN((1, 28, 28), 10, blocks, hidden_sizes=[64])
    conv1 = 32 * (1 * 3 * 3) + 32          # 320
    conv2 = 32 * (32 * 3 * 3) + 32         # 9,248
    side = ((28 - 2) // 2 - 2) // 2        # 28 -> 26 -> 13 -> 11 -> 5
    dense = (32 * side * side) * 64 + 64   # 51,264
    out = 64 * 10 + 10                     # 650
    assert sum(p.numel() for p in net.parameters()) == conv1 + conv2 + dense + out == 61_482
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_impossible_geometry_is_a_config_error():
    with pytest.raises(ConfigError, match=r"model.blocks.1.kernel=5 is not allowed: at most 3: this block's input is 3x3"):
        CNN((1, 8, 8), 10, [dict(filters=4, kernel=3, pool=2), dict(filters=4, kernel=5)])
    with pytest.raises(ConfigError, match=r"model.blocks.0.pool=5 is not allowed: at most 4: the block's feature maps are 4x4"):
        CNN((1, 6, 6), 10, [dict(filters=4, kernel=3, pool=5)])
    with pytest.raises(ConfigError, match="use model=mlp"):
        CNN((30,), 2, [dict(filters=4)])


def test_tiny_cnn_learns_digits_images(run_nnexp):
    metrics = run_nnexp("data=digits_images", "model=cnn_small", "trainer.max_epochs=15", "optim.lr=0.01", "stopping=none")
    assert metrics["test_score"] > 0.85
    assert metrics["params"] == (8 * 9 + 8) + (8 * 72 + 8) + (8 * 2 * 2 * 64 + 64) + 650


def test_mnist_files_train_a_cnn_and_an_mlp(run_nnexp, tiny_idx_root):
    cnn = run_nnexp("experiment=mnist_cnn", f"data.root={tiny_idx_root}", "trainer.max_epochs=4")
    mlp = run_nnexp("experiment=mnist_mlp", f"data.root={tiny_idx_root}", "trainer.max_epochs=4")
    assert cnn["test_score"] > 0.8 and mlp["test_score"] > 0.8
    assert cnn["params"] == 61_482 and mlp["params"] == 784 * 100 + 100 + 100 * 10 + 10


def test_params_mode_prints_the_layer_table_without_training(compose_cfg, tiny_idx_root):
    import contextlib
    import io
    from pathlib import Path

    from nnexp.runner import run

    cfg = compose_cfg("mode=params", "model=cnn", "data=mnist", f"data.root={tiny_idx_root}")
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        run(cfg)
    assert "61,482" in output.getvalue() and "conv2" in output.getvalue()
    assert not (Path(cfg.paths.output_dir) / "metrics.json").exists()
    assert "61,482" in (Path(cfg.paths.output_dir) / "model_summary.txt").read_text()


def test_compile_true_trains_the_same_net(run_nnexp):
    plain = run_nnexp("data=iris", "trainer.max_epochs=3", "stopping=none", "plots=false")
    compiled = run_nnexp("data=iris", "trainer.max_epochs=3", "stopping=none", "plots=false", "compile=true")
    for key in ("train_loss", "test_loss", "test_score"):
        assert compiled[key] == pytest.approx(plain[key], abs=1e-4), key
