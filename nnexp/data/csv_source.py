"""The user's own CSV file: one target column, numeric feature columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnexp.data.sources import ArraySource
from nnexp.errors import ConfigError, DataError


class CsvSource(ArraySource):
    """Read ``path`` with pandas; ``target`` names the label column, ``drop`` lists columns to ignore."""

    def __init__(self, path: str | None, target: str | None, delimiter: str = ",", drop=(), **split_options):
        super().__init__(**split_options)
        self.path, self.target, self.delimiter, self.drop = path, target, delimiter, list(drop or [])

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

        try:
            frame = pd.read_csv(path, sep=self.delimiter)
        except (ValueError, UnicodeDecodeError) as error:  # pandas' ParserError is a ValueError
            raise DataError(f"data.path={self.path!r}: cannot parse as CSV ({error}); check data.delimiter") from None
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
