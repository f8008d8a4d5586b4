"""A job's log file: the lines a job says, appended to the file that Hydra's job logging names for
it (``<job dir>/<job name>.log`` by default), in that handler's format.

nnexp shows a run on the console as tables, not as log records, so the file would stay empty
through Python's logging. The job writes its lines into the file itself, and holds no logging
state of the process: a job run without a file handler (``hydra/job_logging=disabled``, ``none``,
``stdout``) writes nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

NAME = "nnexp.job"  # the logger name the lines carry


class JobLog:
    """The log file of one job, from its hydra node; resolved at the first line, once the job's
    output dir is set (``hydra.runtime.output_dir``, which the file's name uses)."""

    def __init__(self, hydra_cfg: DictConfig):
        self.hydra_cfg = hydra_cfg
        self.resolved = False
        self.target: tuple[Path, logging.Formatter, int] | None = None

    def write(self, text: str, level: int = logging.INFO) -> None:
        """Append ``text`` (each of its lines a record) unless the handler's level drops it."""
        if not self.resolved:
            self.target, self.resolved = file_handler(self.hydra_cfg), True
        if self.target is None:
            return
        path, formatter, threshold = self.target
        if level < threshold:
            return
        records = [logging.makeLogRecord({"name": NAME, "levelno": level, "levelname": logging.getLevelName(level), "msg": line})
                   for line in text.splitlines()]
        with path.open("a", encoding="utf-8") as file:
            file.writelines(formatter.format(record) + "\n" for record in records)


def file_handler(hydra_cfg: DictConfig) -> tuple[Path, logging.Formatter, int] | None:
    """The file, formatter and level of the first file handler of the job's logging config
    (Hydra's ``file``), or None where it has none."""
    logging_cfg = OmegaConf.select(hydra_cfg, "job_logging", default=None)
    if logging_cfg is None:
        return None
    try:
        logging_cfg = OmegaConf.to_container(logging_cfg, resolve=True)  # one pass: a node's every read resolves
    except OmegaConfBaseException:  # a value that cannot resolve: Hydra's own logging set-up refuses it too
        return None
    formatters, root_level = logging_cfg.get("formatters") or {}, (logging_cfg.get("root") or {}).get("level")
    for handler in (logging_cfg.get("handlers") or {}).values():
        if not str(handler.get("class", "")).endswith("FileHandler") or not handler.get("filename"):
            continue
        style = formatters.get(str(handler.get("formatter")), None) or {}
        formatter = logging.Formatter(style.get("format"), style.get("datefmt"), style=style.get("style", "%"))
        levels = [level_number(level) for level in (root_level, handler.get("level")) if level is not None]
        return Path(str(handler["filename"])), formatter, max(levels, default=0)
    return None


def level_number(level) -> int:
    """A logging config's level (``INFO`` or 20) as a number; 0 for one logging does not know."""
    if isinstance(level, int):
        return level
    number = logging.getLevelName(str(level).upper())
    return number if isinstance(number, int) else 0
