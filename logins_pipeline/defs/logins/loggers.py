"""The console logger of every run: Dagster's colored one, or JSON lines when LOGINS_LOG_FORMAT=json."""

import logging

import dagster as dg

from logins_pipeline.logs import json_handler, json_logs


@dg.logger(
    config_schema=dg.colored_console_logger.config_schema,
    description="Dagster's console logger; one JSON object per line when LOGINS_LOG_FORMAT=json.",
)
def console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    if not json_logs():
        return dg.colored_console_logger.logger_fn(init_context)
    config = init_context.logger_config
    logger = logging.Logger(config["name"], level=logging.getLevelName(config["log_level"].upper()))
    logger.addHandler(json_handler())
    return logger
