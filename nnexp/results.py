"""Run-dir files, written atomically so that a killed run never leaves half a file."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import yaml
from omegaconf import DictConfig, OmegaConf

from nnexp import durable
from nnexp.compat import yaml_string_representer

# A run dir's files.
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.pt"
MODEL_SUMMARY_FILE = "model_summary.txt"
SKLEARN_FILE = "sklearn.json"  # scikit-learn's own fit beside the run (sklearn=true)
PROVENANCE_FILE = "provenance.json"  # versions, host, device, git commit (nnexp.provenance)
OVERRIDES_FILE = "overrides.yaml"  # a job's overrides, in its hydra.output_subdir
HYDRA_FILES = (CONFIG_FILE, "hydra.yaml", OVERRIDES_FILE)  # what Hydra writes into a job's hydra.output_subdir
HYDRA_CONFIG_FILE = Path(".hydra") / CONFIG_FILE  # Hydra's record of a job's composed config, unresolved
# A sweep dir's files.
STUDY_FILE = "study.json"  # which Optuna study an Optuna sweep fed (the report's Optuna figures)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed onto ``path`` when the block ends
    without error, removed when it raises. Readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = durable.new_file(path.parent, prefix=f".{path.name}.", suffix=".tmp")  # the umask's mode, not 0600
    try:
        yield tmp
        if path.name == METRICS_FILE:  # it marks the dir's files finished: their data and names reach the disk first
            durable.sync_before_marking_finished(tmp)
        elif not durable.data_sync_put_off(path):
            durable.sync(files=[tmp])  # its contents on disk before the rename makes it the file
        os.replace(tmp, path)
        durable.renamed_into(path.parent)  # and the rename itself (now, or with the job's other syncs)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="")


def copy_atomic(source: Path, target: Path) -> None:
    """Copy a file (with its times) so that ``target`` is either the old file or the whole new one."""
    with atomic_path(target) as tmp:
        shutil.copy2(source, tmp)


class _YamlDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """libyaml's writer with OmegaConf's rule for strings: quote those that would load as a bool,
    int or float, so that OmegaConf.load reads back exactly what was saved."""


_YamlDumper.add_representer(str, yaml_string_representer)


def yaml_text(data: Any) -> str:
    """Plain containers as OmegaConf.to_yaml writes them, through libyaml when PyYAML has it
    (several times faster than OmegaConf's pure-Python writer, which dominated recording a job)."""
    return yaml.dump(data, Dumper=_YamlDumper, default_flow_style=False, allow_unicode=True, sort_keys=False)


def config_yaml(cfg: DictConfig, resolve: bool = True) -> str:
    """A config as YAML, like ``OmegaConf.to_yaml(cfg, resolve=resolve)``."""
    return yaml_text(OmegaConf.to_container(cfg, resolve=resolve, enum_to_str=True))


def _json_safe(value: Any) -> Any:
    # JSON has no NaN or Infinity; a diverged run stores them as null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` as indented JSON, atomically; non-finite floats become null."""
    write_text_atomic(path, json.dumps(_json_safe(payload), indent=2) + "\n")


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON file written by :func:`write_json`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


# A history cell's text by type (repr: every float reads back exactly); formatting a whole row
# at once runs 1.7x faster than csv.writer's cell by cell.
_CELL_FORMATS = {int: "%d", float: "%r"}


def write_history(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Write one CSV row per epoch; the columns are the union of the rows' keys, in order.
    Rows of plain numbers in column order are formatted at once, others through csv."""
    rows = list(rows)
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    formats: dict[tuple, str | None] = {}  # by (keys, value types): the row's format, or None
    for row in rows:
        values = tuple(row.values())
        shape = (tuple(row), tuple(map(type, values)))
        if shape not in formats:
            numeric = shape[0] == tuple(columns) and all(kind in _CELL_FORMATS for kind in shape[1])
            formats[shape] = ",".join(_CELL_FORMATS[kind] for kind in shape[1]) + "\r\n" if numeric else None
        if formats[shape] is None:
            writer.writerow([row.get(column, "") for column in columns])
        else:
            buffer.write(formats[shape] % values)
    write_text_atomic(path, buffer.getvalue())
