"""Structured logs: with LOGINS_LOG_FORMAT=json every log line is one JSON object (the CLI and Dagster runs)."""

import json
import logging
import os
import sys
from datetime import UTC, datetime

from logins_pipeline import settings
from logins_pipeline.errors import innermost_message, redact

DAGSTER_META = "dagster_meta"  # the attribute Dagster's log manager sets on the records of a run


def json_logs() -> bool:
    return os.environ.get(settings.LOG_FORMAT, "").strip().lower() == "json"


def _event_fields(meta: dict) -> dict:
    """Run, job, step and event type of a Dagster record; an error only as its redacted first line."""
    fields = {"run_id": meta.get("run_id"), "job": meta.get("job_name"), "step": meta.get("step_key")}
    event = meta.get("dagster_event")
    if event is not None:
        fields["event"] = event.event_type_value
        error = getattr(event.event_specific_data, "error", None)
        if error is not None:
            fields["error"] = redact(innermost_message(error))
    return fields


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message, and Dagster's run fields if any."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        meta = getattr(record, DAGSTER_META, None)
        if meta:
            line["message"] = meta.get("orig_message") or line["message"]
            line.update(_event_fields(meta))
        if record.exc_info:
            line["error"] = redact(self.formatException(record.exc_info).splitlines()[-1])
        return json.dumps({key: value for key, value in line.items() if value is not None}, default=str)


def json_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLinesFormatter())
    return handler


class JsonConsoleLogger(logging.Logger):
    """A logger whose handlers write JSON lines, whatever formatter they came with.

    Dagster builds its text console loggers from logging.getLoggerClass() and then adds a handler with its
    own format (dagster._utils.log.create_console_logger): the loggers of sensor and schedule ticks, and the
    default system logger of a log manager that has no run config (a run worker's first events). With this
    class installed they write JSON lines too, and the job's own logger (defs/logins/loggers.py) does the rest.
    """

    def addHandler(self, hdlr: logging.Handler) -> None:
        hdlr.setFormatter(JsonLinesFormatter())
        super().addHandler(hdlr)


def install_json_console_loggers() -> None:
    """With LOGINS_LOG_FORMAT=json, the console loggers Dagster creates from now on write JSON lines."""
    if json_logs():
        logging.setLoggerClass(JsonConsoleLogger)


def configure_logging() -> None:
    """For a command-line process: with LOGINS_LOG_FORMAT=json, Python's logging writes JSON lines."""
    install_json_console_loggers()
    if json_logs():
        logging.basicConfig(level=logging.WARNING, handlers=[json_handler()], force=True)  # libraries: warnings
        logging.getLogger("logins_pipeline").setLevel(logging.INFO)
        logging.captureWarnings(True)
