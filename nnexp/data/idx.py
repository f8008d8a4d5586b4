"""IDX files (the MNIST family): find, verify, decode and cache them.

The four standard files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, gzipped or plain) live in
``<root>/<dataset>/`` (or directly in ``<root>``). Gzipped files are checked against the MD5
sums the datasets publish on first use; decoded arrays are then cached as ``.npy`` next to the
files (or in the user's cache folder when that folder is read-only), with their checksum, so later
loads skip both; a cache whose content no longer matches its checksum is rebuilt.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import sys
import zlib
from pathlib import Path

import numpy as np

from nnexp.errors import DataError
from nnexp.results import atomic_path, write_text_atomic

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# MD5 of the published .gz files (the same sums torchvision checks).
KNOWN_MD5 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    "kmnist": {
        "train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
        "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
        "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
        "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134",
    },
}
HOMEPAGES = {
    "mnist": "the MNIST database (yann.lecun.com/exdb/mnist, or any mirror torchvision uses)",
    "fashion_mnist": "github.com/zalandoresearch/fashion-mnist",
    "kmnist": "github.com/rois-codh/kmnist",
}
MIRRORS = {  # where the four .gz files can be downloaded (the mirrors torchvision uses)
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion_mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "kmnist": "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
}
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def decode_idx(raw: bytes, name: str) -> np.ndarray:
    """Decode the bytes of one IDX file; a wrong header or length is a DataError."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise DataError(f"{name} is not an IDX file (bad header); replace it with the original file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(f"{name} is corrupt or truncated ({len(raw)} bytes, expected {expected}); replace it with the original file")
    # A writable copy in native byte order: torch refuses to share read-only numpy memory.
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dataset_dir(root: Path, dataset: str) -> Path:
    """``<root>/<dataset>`` when it exists, else ``root`` itself."""
    nested = Path(root).expanduser() / dataset
    return nested if nested.is_dir() else Path(root).expanduser()


def locate(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def writable(folder: Path) -> bool:
    """Writable by access() and by its mode bits: root passes access() even on folders that are
    meant to be read-only, like a shared data folder."""
    return folder.is_dir() and os.access(folder, os.W_OK) and bool(folder.stat().st_mode & 0o222)


def cache_dir_for(folder: Path) -> Path:
    """Next to the data when writable, else a per-folder dir in the user's cache folder, as
    platformdirs names it (``$XDG_CACHE_HOME/nnexp``, else ``~/.cache/nnexp`` on Linux;
    ``~/Library/Caches/nnexp`` on macOS). A cache left in ``~/.cache/nnexp`` by an older nnexp
    is moved there once, with a note, or read where it is when it cannot be moved."""
    import shutil

    import platformdirs

    local = folder / ".nnexp-cache"
    if writable(local) or (not local.exists() and writable(folder)):
        return local
    key = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12]
    cache = Path(platformdirs.user_cache_dir("nnexp", appauthor=False))
    legacy = Path.home() / ".cache" / "nnexp"
    if legacy != cache and legacy.is_dir() and not cache.exists():
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(legacy), str(cache))
            print(f"note: moved nnexp's cache from {legacy} to {cache}", file=sys.stderr)
        except OSError:
            return legacy / key
    return cache / key


def load_array(path: Path, dataset: str, cache: Path) -> np.ndarray:
    """Decoded contents of one IDX file, from the cache when the file is unchanged."""
    stat = path.stat()
    stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    cached, meta = cache / f"{path.name}.npy", cache / f"{path.name}.json"
    if cached.is_file() and meta.is_file():
        try:
            recorded = json.loads(meta.read_text())
            if {key: recorded.get(key) for key in stamp} == stamp and "checksum" in recorded:
                array = np.load(cached)
                if array_checksum(array) == recorded["checksum"]:
                    return array
                print(f"note: the cached copy of {path.name} in {cache} does not match its checksum (it changed after it "
                      f"was written); rebuilt it from {path}", file=sys.stderr)
        except (OSError, ValueError, EOFError):  # a truncated or corrupt cache file: rebuilt below
            print(f"note: the cached copy of {path.name} in {cache} was unreadable; rebuilt it from {path}", file=sys.stderr)
    expected = KNOWN_MD5.get(dataset, {}).get(path.name)
    if expected and md5_of(path) != expected:
        raise DataError(
            f"{path} fails its checksum (MD5 is not {expected}); the file is corrupt or not the {dataset} "
            "release: download it again"
        )
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise DataError(f"{path} is not a readable gzip file ({error}); download it again") from None
    array = decode_idx(raw, path.name)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached) as temporary, open(temporary, "wb") as handle:
            np.save(handle, array)
        write_text_atomic(meta, json.dumps({**stamp, "checksum": array_checksum(array)}))
    except OSError:
        pass  # no writable cache: decode again next time
    return array


def array_checksum(array: np.ndarray) -> str:
    """CRC-32 of a decoded array's shape, type and bytes: a cache is trusted by its content, not
    by its size and time (about 0.1 s for MNIST's training images)."""
    header = f"{array.dtype.str}{array.shape}".encode()
    return f"{zlib.crc32(np.ascontiguousarray(array).data, zlib.crc32(header)):08x}"


def download_command(dataset: str, folder: Path) -> str:
    """A shell command that fetches the four files of a dataset in MIRRORS into ``folder``
    (nnexp itself never downloads)."""
    url = MIRRORS[dataset]
    names = " ".join(f"{stem}.gz" for stem in FILES.values())
    return f"mkdir -p {folder} && cd {folder} && for f in {names}; do curl -fLO {url}$f; done"


def load_idx_dataset(root: Path, dataset: str) -> dict[str, np.ndarray]:
    """The four arrays of an MNIST-family dataset: train/test images (N, H, W) and labels (N,)."""
    folder = dataset_dir(Path(root), dataset)
    paths = {key: locate(folder, stem) for key, stem in FILES.items()}
    missing = [f"{stem}.gz" for key, stem in FILES.items() if paths[key] is None]
    if missing:
        raise DataError(
            f"data={dataset}: {', '.join(missing)} not found in {folder}; put the four IDX files (.gz or plain) "
            f"from {HOMEPAGES.get(dataset, 'the dataset homepage')} in {Path(root) / dataset}, "
            "or point data.root (or NNEXP_DATA) at the folder that holds them"
            + (f". Download: {download_command(dataset, Path(root) / dataset)}" if dataset in MIRRORS else "")
        )
    cache = cache_dir_for(folder)
    arrays = {key: load_array(path, dataset, cache) for key, path in paths.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1:
            raise DataError(
                f"data={dataset}: {paths[f'{split}_images'].name} holds shape {images.shape} and "
                f"{paths[f'{split}_labels'].name} shape {labels.shape}; images are (N, rows, columns) and labels (N,): "
                "the files are swapped, or not this dataset's"
            )
        if len(images) != len(labels):
            raise DataError(f"data={dataset}: {split} images and labels differ in count; the files do not belong together")
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise DataError(f"data={dataset}: training images are {arrays['train_images'].shape[1:]} pixels and test images "
                        f"{arrays['test_images'].shape[1:]}; the files do not belong together")
    unseen = np.setdiff1d(arrays["test_labels"], arrays["train_labels"])
    if unseen.size:
        raise DataError(f"data={dataset}: test labels {unseen[:5].tolist()} never occur in the training labels; "
                        "the files do not belong together")
    return arrays
