"""The user's own CSV file: one target column, numeric feature columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnexp.data.sources import ArraySource
from nnexp.errors import ConfigError, DataError


class CsvSource(ArraySource):
    """Read ``path`` with pandas; ``target`` names the label column, ``drop`` lists columns to ignore."""

    def __init__(self, path: str | None, target: str | None, delimiter: str = ",", drop=(), encoding: str = "utf-8",
                 **split_options):
        super().__init__(**split_options)
        self.path, self.target, self.delimiter, self.drop = path, target, delimiter, list(drop or [])
        self.encoding = encoding

    def cache_token(self) -> tuple:
        path = Path(self.path or "").expanduser()
        return (path.stat().st_size, path.stat().st_mtime_ns) if path.is_file() else ()

    def arrays(self):
        if not self.path:
            raise ConfigError("data.path", self.path, "the path of your CSV file, e.g. data.path=my.csv")
        if not self.target:
            raise ConfigError("data.target", self.target, "the name of the label column, e.g. data.target=label")
        path = Path(self.path).expanduser()
        if not path.is_file():
            raise DataError(f"data.path={self.path!r}: no such file; give the path of an existing CSV file")
        import pandas as pd

        self._check_header(path)
        try:
            with self._open(path) as handle:
                frame = pd.read_csv(handle, sep=self.delimiter)
        except UnicodeDecodeError as error:
            raise self._encoding_error(error) from None
        except LookupError:
            raise ConfigError("data.encoding", self.encoding, "an encoding Python knows, e.g. utf-8 or latin-1") from None
        except ValueError as error:  # pandas' ParserError is a ValueError
            reason = " ".join(str(error).split())  # pandas' own message can span lines
            raise DataError(f"data.path={self.path!r}: cannot parse as CSV ({reason}); check data.delimiter") from None
        frame = without_index_column(frame, path)
        if frame.empty:
            raise DataError(f"data.path={self.path!r}: a header and no rows; the file needs data rows")
        if self.target not in frame.columns:
            shown = ", ".join(map(str, frame.columns[:10]))
            raise DataError(
                f"data.target={self.target!r}: no such column in {path.name}; columns are: {shown}"
                + (f" (delimiter {self.delimiter!r}; set data.delimiter if that is wrong)" if len(frame.columns) == 1 else "")
            )
        unknown = [column for column in self.drop if column not in frame.columns]
        if unknown:
            raise ConfigError("data.drop", unknown, f"columns that exist in {path.name}")
        features = frame.drop(columns=[self.target, *self.drop])
        text_columns = [str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
        if text_columns:
            raise DataError(
                f"data.path={self.path!r}: column(s) {', '.join(text_columns[:5])} are not numeric; "
                f"encode them as numbers or list them in data.drop"
            )
        if features.shape[1] == 0:
            raise DataError(f"data.path={self.path!r}: no feature columns left besides the target")
        y = frame[self.target]
        if y.isna().any():
            raise DataError(f"data.target={self.target!r}: {int(y.isna().sum())} rows have no label; drop them")
        labels = y.to_numpy() if pd.api.types.is_numeric_dtype(y) else tidy_labels(y.astype(str).to_numpy(dtype=object), self.target)
        return features.to_numpy(dtype=np.float64), labels, [str(c) for c in features.columns], self.target

    def _check_header(self, path: Path) -> None:
        """Duplicate column names are an error: pandas would rename the second ``label`` to
        ``label.1`` and train on it as a feature."""
        import csv
        from collections import Counter

        try:
            with self._open(path) as handle:
                header = next(csv.reader(handle, delimiter=self.delimiter), [])
        except UnicodeDecodeError as error:
            raise self._encoding_error(error) from None
        except LookupError:
            raise ConfigError("data.encoding", self.encoding, "an encoding Python knows, e.g. utf-8 or latin-1") from None
        except (TypeError, csv.Error):  # a delimiter csv cannot use: pandas says why below
            return
        duplicates = [name for name, count in Counter(name.strip() for name in header).items() if count > 1]
        if duplicates:
            raise DataError(f"data.path={self.path!r}: column name(s) {', '.join(map(repr, duplicates))} appear more than once "
                            "in the header; give every column its own name")

    def _open(self, path: Path):
        """The file as text: decompressed (gzip, bz2, xz, a zip of one file) and decoded by its
        byte-order mark when it has one (UTF-8, UTF-16, UTF-32), else by ``data.encoding``."""
        import io

        compression = compression_of(path)
        if compression == "zip":
            import zipfile

            archive = zipfile.ZipFile(path)
            names = [name for name in archive.namelist() if not name.endswith("/")]
            if len(names) != 1:
                raise DataError(f"data.path={self.path!r} is a zip of {len(names)} files; unzip it and give data.path=<the "
                                "CSV file inside>")
            raw = archive.open(names[0])
        elif compression == "zstd":
            raise DataError(f"data.path={self.path!r} is zstd-compressed; decompress it first (zstd -d {path.name})")
        else:
            raw = binary_opener(compression)(path, "rb")
        raw = io.BufferedReader(raw) if not hasattr(raw, "peek") else raw
        encoding = encoding_by_bom(raw.peek(4)[:4]) or self.encoding
        return io.TextIOWrapper(raw, encoding=encoding, newline="")

    def _encoding_error(self, error: UnicodeDecodeError) -> DataError:
        return DataError(
            f"data.path={self.path!r} is not {self.encoding} text (byte 0x{error.object[error.start]:02x} at position "
            f"{error.start}); set its encoding, e.g. data.encoding=latin-1"
        )


MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz", b"PK\x03\x04": "zip", b"\x28\xb5\x2f\xfd": "zstd"}
BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def binary_opener(compression: str | None):
    """``open`` for a plain file, or the standard library's opener of its compression."""
    import bz2
    import gzip
    import lzma

    return {None: open, "gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}[compression]


def compression_of(path: Path) -> str | None:
    """The file's compression, by its first bytes (not its name): gzip, bz2, xz, zip, zstd or None."""
    with open(path, "rb") as handle:
        head = handle.read(6)
    return next((kind for magic, kind in MAGIC.items() if head.startswith(magic)), None)


def encoding_by_bom(head: bytes) -> str | None:
    """The encoding a byte-order mark announces (UTF-32 is tested before UTF-16, whose mark it starts with)."""
    return next((encoding for bom, encoding in BOMS if head.startswith(bom)), None)


def without_index_column(frame, path: Path):
    """Drop an unnamed first column that counts the rows (pandas' ``to_csv`` writes its index so), with a note."""
    import sys

    import pandas as pd

    first = frame.columns[0] if len(frame.columns) > 1 else None
    if first is None or not (str(first).startswith("Unnamed: 0") or str(first).strip() == ""):
        return frame
    values = frame[first]
    if not pd.api.types.is_integer_dtype(values) or not (values.diff().iloc[1:] == 1).all():
        return frame
    print(f"note: the first column of {path.name} has no name and counts the rows (a pandas index written by to_csv); "
          "dropped it. Write files with to_csv(..., index=False)", file=sys.stderr)
    return frame.drop(columns=[first])


def tidy_labels(labels: np.ndarray, target: str) -> np.ndarray:
    """Text labels with their surrounding whitespace stripped (' yes' is 'yes', as a reader of the file
    expects), with a note; labels that then differ only by case are kept apart, with a note."""
    import sys

    stripped = np.array([label.strip() for label in labels], dtype=object)
    changed = sorted({label for label, tidy in zip(labels, stripped) if label != tidy})
    if changed:
        print(f"note: {target} labels {', '.join(map(repr, changed[:3]))} had surrounding whitespace; stripped it, so "
              "that they are the same class as the labels without it", file=sys.stderr)
    by_case: dict[str, set] = {}
    for label in set(stripped):
        by_case.setdefault(label.casefold(), set()).add(label)
    clashes = [sorted(group) for group in by_case.values() if len(group) > 1]
    if clashes:
        print(f"note: {target} labels {' and '.join(map(repr, clashes[0]))} differ only by case and are separate classes; "
              "spell them alike in the file if they are one", file=sys.stderr)
    return stripped
