"""The Dagster code location: every definition under logins_pipeline/defs/, autoloaded as dg does.

dg (`dg dev`, `dg check defs`) finds this module through [tool.dg] in pyproject.toml; workspace.yaml and the
image's `dagster code-server start -m logins_pipeline.definitions` load it directly. The tree is built from
the defs package itself rather than with dg.load_from_defs_folder, which reads [tool.dg] from pyproject.toml
at load time: an installed package (the image) has no pyproject.toml, and would not load.
"""

import warnings
from pathlib import Path

import dagster as dg

from logins_pipeline import defs as defs_package
from logins_pipeline.logs import install_json_console_loggers
from logins_pipeline.privacy.log_redaction import install_redaction

install_redaction()
install_json_console_loggers()  # the code server's and run workers' own Dagster loggers (LOGINS_LOG_FORMAT=json)

with warnings.catch_warnings():  # as dg.load_from_defs_folder does: its module loader is a "preview" API
    warnings.simplefilter("ignore", dg.PreviewWarning)
    defs = dg.ComponentTree.from_module(defs_package, project_root=Path(__file__).parent.parent).build_defs()
