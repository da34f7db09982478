"""Runtime settings of the Lambda functions, from their environment variables.

This is the only module that reads `os.environ` for the functions; handlers build a
`Settings` and pass plain values to the domain modules. The CDK stack sets exactly
these variables (a test checks it).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from myshift.errors import ConfigError

ENVIRONMENT_VARIABLES = {
    "bucket": "MYSHIFT_BUCKET",
    "state_table": "MYSHIFT_STATE_TABLE",
    "pipelines_dir": "MYSHIFT_PIPELINES_DIR",
    "poll_seconds": "MYSHIFT_POLL_SECONDS",
    "data_prefix": "MYSHIFT_DATA_PREFIX",
    "inline_map_max_chunks": "MYSHIFT_INLINE_MAP_MAX_CHUNKS",
    "copy_role_arn": "MYSHIFT_COPY_ROLE_ARN",
}


# Under the data prefix: what Distributed Maps write (their ResultWriter manifests and
# results). Workflow bookkeeping, never data: an S3 lifecycle rule expires it.
MAP_RESULTS_FOLDER = "_map-results"
MAP_RESULTS_DAYS = 7


def map_results_prefix(data_prefix: str) -> str:
    """Where the Distributed Maps write their results (`<data prefix>/_map-results`)."""
    return f"{data_prefix}/{MAP_RESULTS_FOLDER}"


class Settings(BaseModel):
    """Where the functions keep their data and state."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str = Field(min_length=3)
    state_table: str = Field(min_length=3)
    pipelines_dir: Path = Path("pipelines")
    poll_seconds: int = Field(default=5, ge=1, le=300)
    data_prefix: str = "data"
    # Above this many chunks the plan goes to S3 and a Distributed Map reads it, so no
    # payload nears 256 KB and no execution history nears 25,000 events.
    inline_map_max_chunks: int = Field(default=200, ge=1, le=2_000)
    # The role COPY reads S3 as for pipelines without target.copy_role_arn (the stack's
    # COPY role); empty: Redshift's default IAM role (IAM_ROLE default).
    copy_role_arn: str = ""

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read the settings from the environment; a missing one is a ConfigError."""
        env = os.environ if environ is None else environ
        values = {field: env[var] for field, var in ENVIRONMENT_VARIABLES.items() if var in env}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0])
            raise ConfigError(
                f"setting {ENVIRONMENT_VARIABLES.get(field, field)}: {error['msg']}"
            ) from None


@lru_cache(maxsize=1)
def current_settings() -> Settings:
    """The settings of this process (cached: the environment of a Lambda is fixed)."""
    return Settings.from_environment()
