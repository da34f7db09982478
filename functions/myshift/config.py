"""Pipeline files (`pipelines/*.yml`): the pydantic model and its loader.

A pipeline names one MySQL source, one Redshift target and the tables to sync.
Loading validates everything up front; a bad file is one clear line naming the file
and the field.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from myshift.errors import ConfigError
from myshift.identifiers import validate_identifier

PIPELINE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
DEFAULT_CHUNK_ROWS = 75_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Strict):
    """Where the MySQL server is and how to authenticate."""

    host: str = Field(min_length=1)
    port: int = Field(default=3306, ge=1, le=65535)
    user: str = Field(min_length=1)
    password_env: str | None = None
    secret_arn: str | None = None
    connect_timeout_seconds: int = Field(default=10, ge=1, le=300)
    read_timeout_seconds: int = Field(default=600, ge=1, le=3600)

    @model_validator(mode="after")
    def _one_password_source(self) -> SourceConfig:
        if bool(self.password_env) == bool(self.secret_arn):
            raise ValueError("give exactly one of password_env or secret_arn")
        return self

    def password(self) -> str:
        """The MySQL password from the environment variable (local runs).

        An empty variable is an empty password; an unset one is an error. In AWS the
        handler reads `secret_arn` instead (see `myshift.secrets`).
        """
        if not self.password_env:
            raise ConfigError("source.password_env is not set for this pipeline")
        value = os.environ.get(self.password_env)
        if value is None:
            raise ConfigError(
                f"environment variable {self.password_env} (source.password_env) is not set"
            )
        return value


class TargetConfig(_Strict):
    """The Redshift database and schema that receive the tables."""

    database: str = Field(min_length=1)
    schema_name: str = Field(alias="schema")
    workgroup: str | None = None
    cluster_identifier: str | None = None
    secret_arn: str | None = None
    db_user: str | None = None
    copy_role_arn: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("schema_name")
    @classmethod
    def _valid_schema(cls, value: str) -> str:
        return validate_identifier(value, what="target.schema")

    @model_validator(mode="after")
    def _one_endpoint(self) -> TargetConfig:
        if bool(self.workgroup) == bool(self.cluster_identifier):
            raise ValueError("give exactly one of workgroup (Serverless) or cluster_identifier")
        return self


class TableConfig(_Strict):
    """One table to sync: `database.table`, its cursor column and its key."""

    name: str
    cursor: str
    primary_key: list[str] = Field(min_length=1)
    safety_lag_seconds: int | None = Field(default=None, ge=0, le=86_400)
    write_mode: Literal["merge", "append", "replace"] = "merge"

    @field_validator("name")
    @classmethod
    def _qualified(cls, value: str) -> str:
        parts = value.split(".")
        if len(parts) != 2:
            raise ValueError(f"must be 'database.table', got {value!r}")
        for part in parts:
            validate_identifier(part, what="table name")
        return value

    @field_validator("cursor")
    @classmethod
    def _valid_cursor(cls, value: str) -> str:
        return validate_identifier(value, what="cursor column")

    @field_validator("primary_key")
    @classmethod
    def _valid_key(cls, value: list[str]) -> list[str]:
        for column in value:
            validate_identifier(column, what="primary key column")
        if len(set(value)) != len(value):
            raise ValueError("primary key columns repeat")
        return value

    @property
    def database(self) -> str:
        return self.name.split(".")[0]

    @property
    def table(self) -> str:
        return self.name.split(".")[1]


class PipelineConfig(_Strict):
    """A whole pipeline file."""

    name: str
    source: SourceConfig
    target: TargetConfig
    strategy: Literal["sequential", "inter-table"] = "sequential"
    schedule: str | None = None
    chunk_rows: Annotated[int, Field(ge=1, le=10_000_000)] = DEFAULT_CHUNK_ROWS
    max_concurrent_chunks: Annotated[int, Field(ge=1, le=40)] = 2
    safety_lag_seconds: Annotated[int, Field(ge=0, le=86_400)] = 5
    lock_lease_seconds: Annotated[int, Field(ge=10, le=86_400)] = 3 * 3600
    max_parallel_tables: Annotated[int, Field(ge=1, le=40)] = 4
    tables: list[TableConfig] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not PIPELINE_NAME.match(value):
            raise ValueError("must be lower case letters, digits, '-' or '_' (at most 63)")
        return value

    @model_validator(mode="after")
    def _unique_tables(self) -> PipelineConfig:
        names = [t.name for t in self.tables]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"tables listed twice: {', '.join(duplicates)}")
        return self

    def table(self, name: str) -> TableConfig:
        """The table called `name` (`database.table`), or a ConfigError."""
        for table in self.tables:
            if table.name == name:
                return table
        known = ", ".join(t.name for t in self.tables)
        raise ConfigError(f"pipeline {self.name!r} has no table {name!r} (it has: {known})")

    def safety_lag_for(self, table: TableConfig) -> int:
        """Seconds kept back from the source's NOW() when freezing the upper bound."""
        if table.safety_lag_seconds is not None:
            return table.safety_lag_seconds
        return self.safety_lag_seconds


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "(file)"
    return f"{where}: {str(error['msg']).removeprefix('Value error, ')}"


def load_pipeline_file(path: Path) -> PipelineConfig:
    """Parse and validate one pipeline file; ConfigError names the file and the field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read pipeline file: {exc}".splitlines()[0]) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a pipeline file must be a mapping")
    try:
        pipeline = PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_first_error(exc)}") from None
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if pipeline.name != path.stem:
        raise ConfigError(f"{path}: name {pipeline.name!r} must match the file name {path.stem!r}")
    return pipeline


def load_pipelines(directory: Path) -> dict[str, PipelineConfig]:
    """Every pipeline in `directory` (`*.yml` and `*.yaml`), by name."""
    if not directory.is_dir():
        raise ConfigError(f"pipelines directory {directory} does not exist")
    pipelines: dict[str, PipelineConfig] = {}
    for path in sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")]):
        pipeline = load_pipeline_file(path)
        pipelines[pipeline.name] = pipeline
    return pipelines


def load_pipeline(directory: Path, name: str) -> PipelineConfig:
    """The pipeline called `name`, or a ConfigError listing the ones that exist."""
    pipelines = load_pipelines(directory)
    if name not in pipelines:
        known = ", ".join(sorted(pipelines)) or "none"
        raise ConfigError(f"unknown pipeline {name!r} (known: {known}) in {directory}")
    return pipelines[name]
