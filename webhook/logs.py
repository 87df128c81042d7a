"""Logging: JSON lines by default, a readable format on request."""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
from typing import Any

import orjson

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    _second = -1
    _prefix = ""

    def _timestamp(self, created: float) -> str:
        """RFC 3339 UTC with milliseconds; the date and time part is formatted once per second."""
        second = int(created)
        if second != self._second:
            self._prefix = dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = second
        return f"{self._prefix}.{int((created - second) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()

    def line(self, logger: str, msg: str, fields: dict[str, Any]) -> bytes:
        """The line ``format`` gives for an info record of ``logger`` with ``msg`` and ``fields`` as extra."""
        entry = {"ts": self._timestamp(time.time()), "level": "info", "logger": logger, "msg": msg, **fields}
        return orjson.dumps(entry, default=str, option=orjson.OPT_APPEND_NEWLINE)


_direct: logging.StreamHandler[Any] | None = None  # the JSON handler ``setup`` installed


def _hears_only(logger: logging.Logger, handler: logging.Handler) -> bool:
    """Whether ``handler`` (on the root logger) is the only handler an info record of ``logger`` reaches, with
    no filter on the way."""
    if handler.filters or handler.level > logging.INFO:
        return False
    node: logging.Logger | None = logger
    while node is not None:
        if node.filters:
            return False
        if node.parent is None:  # the root
            return node.handlers == [handler]
        if node.handlers or not node.propagate:
            return False
        node = node.parent
    return False


def info_fields(logger: logging.Logger, msg: str, fields: dict[str, Any]) -> None:
    """``logger.info(msg, extra=fields)``, written directly as the JSON line when the JSON handler of ``setup``
    is the only one that hears it: the record, the handler chain and the formatter's walk over the record cost
    several times what the line itself does (per admission, that is measurable). Any other set-up (another
    handler, a filter, the text format, pytest's log capture) gets the record as usual."""
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _direct
    formatter = handler.formatter if handler is not None else None
    if handler is None or not isinstance(formatter, JsonFormatter) or not _hears_only(logger, handler):
        logger.info(msg, extra=fields)
        return
    try:
        line = formatter.line(logger.name, msg, fields).decode()
        with handler.lock:  # type: ignore[union-attr]
            handler.stream.write(line)
            handler.stream.flush()
    except Exception:  # what the record would have met: let the handler's own error handling deal with it
        logger.info(msg, extra=fields)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}
        return text + ("  " + " ".join(f"{k}={v}" for k, v in extra.items()) if extra else "")


def setup(level: str = "info", fmt: str = "json") -> None:
    # the logging documentation's optimisations: no caller frame look-up, no thread or process names
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    global _direct
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    _direct = handler if fmt == "json" else None
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "kubernetes", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
