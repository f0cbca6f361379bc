"""Running the nightly job from the command line so that the run belongs to the UI's code location.

`scv run` executes in-process (one process, so a kill stops the whole night), but records the
run as the job of the `scv-warehouse` code location, the one `make ui` (and `dagster dev` in the
project folder, through pyproject.toml's `[tool.dagster]`) loads. That is what lets a failed
night be re-executed from the UI.
"""

import os
import sys

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.execution.api import execute_run
from dagster._core.remote_origin import (
    InProcessCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from dagster_project.constants import JOB_NIGHTLY
from dagster_project.definitions import nightly_job_from_env

#: The code location the UI shows this project as: the project's name (pyproject.toml's
#: `[tool.dagster] code_location_name`, and the workspace `make ui` writes).
CODE_LOCATION = "scv-warehouse"
#: The module that location loads (`defs`, built from `$SCV_CONFIG`).
DEFINITIONS_MODULE = "dagster_project.definitions"
#: The repository name Dagster gives a `Definitions` object.
REPOSITORY = "__repository__"


def _ui_origin() -> RemoteJobOrigin:
    target = LoadableTargetOrigin(
        executable_path=sys.executable, module_name=DEFINITIONS_MODULE, working_directory=os.getcwd()
    )
    location = InProcessCodeLocationOrigin(target, location_name=CODE_LOCATION)
    return RemoteJobOrigin(RemoteRepositoryOrigin(location, REPOSITORY), JOB_NIGHTLY)


def run_nightly_job(
    instance: dg.DagsterInstance, run_config: dict, tags: dict[str, str]
) -> dg.ExecuteInProcessResult:
    """Execute the nightly job for `$SCV_CONFIG` in this process and wait for it."""
    job = dg.reconstructable(nightly_job_from_env)
    # Dagster memoises the last loaded definition per code pointer; the pointer is the same for
    # every config, so a second night in one process must not reuse the first one's job.
    ReconstructableJob.get_definition.cache_clear()
    ReconstructableJob.get_repository_definition.cache_clear()
    job_def = job.get_definition()
    run = instance.create_run_for_job(
        job_def=job_def,
        run_config=run_config,
        tags={**job_def.tags, **tags},
        remote_job_origin=_ui_origin(),
        job_code_origin=job.get_python_origin(),
    )
    return execute_run(job, run, instance)
