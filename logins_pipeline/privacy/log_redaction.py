"""No plaintext PII in logs or errors, even from a message nobody meant to write.

A logging.Filter on the package's and Dagster's loggers (and on each run's `context.log`, Dagster's log
manager, which feeds the event log and the console) redacts every record; `redacted_errors` re-raises an
error with its text redacted, so the step failure Dagster stores holds no value either. botocore logs
every SQS request and response body at DEBUG, the messages themselves: those records are dropped.
"""

import contextlib
import logging

from logins_pipeline.core.redaction import redact

LOGGER_NAMES = ("logins_pipeline", "dagster")
BODY_LOGGER_NAMES = ("botocore.endpoint", "botocore.parsers")


class RedactionFilter(logging.Filter):
    """Redacts a record's message, its exception text and its stack in place; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit the format: keep the format alone
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class DropDebugFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


def _add_once(logger: logging.Logger, filter_class: type[logging.Filter]) -> None:
    if not any(isinstance(f, filter_class) for f in logger.filters):
        logger.addFilter(filter_class())


def install_redaction(*loggers: logging.Logger) -> None:
    """Redact the package's and Dagster's loggers and `loggers`; drop botocore's body dumps. Once each."""
    for logger in (*map(logging.getLogger, LOGGER_NAMES), *loggers):
        _add_once(logger, RedactionFilter)
    for name in BODY_LOGGER_NAMES:
        _add_once(logging.getLogger(name), DropDebugFilter)


class RedactedError(Exception):
    """An error whose text was redacted; its traceback (code lines, no values) is the original one."""


@contextlib.contextmanager
def redacted_errors():
    """Re-raise any error as RedactedError. The cause is dropped: its text is what might hold a value."""
    try:
        yield
    except Exception as error:
        raise RedactedError(redact(f"{type(error).__name__}: {error}")).with_traceback(error.__traceback__) from None
