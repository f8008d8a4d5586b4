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
            frame = pd.read_csv(path, sep=self.delimiter, encoding=self.encoding)
        except UnicodeDecodeError as error:
            raise self._encoding_error(error) from None
        except LookupError:
            raise ConfigError("data.encoding", self.encoding, "an encoding Python knows, e.g. utf-8 or latin-1") from None
        except ValueError as error:  # pandas' ParserError is a ValueError
            raise DataError(f"data.path={self.path!r}: cannot parse as CSV ({error}); check data.delimiter") from None
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
        labels = y.to_numpy() if pd.api.types.is_numeric_dtype(y) else y.astype(str).to_numpy(dtype=object)
        return features.to_numpy(dtype=np.float64), labels, [str(c) for c in features.columns], self.target

    def _check_header(self, path: Path) -> None:
        """Duplicate column names are an error: pandas would rename the second ``label`` to
        ``label.1`` and train on it as a feature."""
        import csv
        from collections import Counter

        try:
            with open(path, newline="", encoding=self.encoding) as handle:
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

    def _encoding_error(self, error: UnicodeDecodeError) -> DataError:
        return DataError(
            f"data.path={self.path!r} is not {self.encoding} text (byte 0x{error.object[error.start]:02x} at position "
            f"{error.start}); set its encoding, e.g. data.encoding=latin-1"
        )
