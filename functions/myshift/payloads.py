"""The sync workflow's payloads: what each state of `statemachines/sync.asl.json` passes on.

Each payload's shape is written here once, as a pydantic model. The handlers parse their
event with `parse` (one InputError line naming the payload and the field when it does not
fit) and return `dump()`: the JSON the ASL reads by JSONPath, field for field.

Presence is part of a shape: the ASL reads some fields that may be null (`max_chunks`,
`order_index`, a statement's `statement_id`) and tests others for presence (`skipped`).
So a field without a default is always there, possibly null; a field with a default is
there only once a state set it, and `dump()` writes only the fields that are set
(`exclude_unset`): a payload parsed and dumped again is the payload it was.

Every model forbids unknown fields: a field the workflow carries but no model declares
fails the handler that receives it, in the tests first. The table's item grows as it
goes (lock, plan, extraction, load, verification); a field a state leaves for the next
ones and a later state has used says so with `Until(<action>)`, and that action's
`TableRun.after(...)` drops it: the payload carries nothing past its last reader.

The execution input is `myshift.workflow.ExecutionInput`; the reconcile and doctor
workflows' payloads are not modelled here (their handlers take plain dicts).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from myshift.errors import InputError

Mode = Literal["full", "backup_only", "redshift_only"]
# An order key's values (cursor, primary key...): JSON scalars, as the plan wrote them.
Key = list[Any]


class Payload(BaseModel):
    """A payload of the workflow: no unknown field, dumped as it was given."""

    model_config = ConfigDict(extra="forbid")

    def dump(self) -> dict[str, Any]:
        """The JSON the next state reads: the fields set, nulls included."""
        return self.model_dump(mode="json", exclude_unset=True)


P = TypeVar("P", bound=Payload)


def parse(model: type[P], raw: Any, what: str | None = None) -> P:
    """`raw` as `model`; InputError, one line naming the payload and the field, if not."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise InputError(validation_message(exc, what or model.__name__)) from None


def validation_message(exc: ValidationError, what: str) -> str:
    """`<what> <field.path>: <message>` of a ValidationError's first error (one line)."""
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{what}{' ' + where if where else ''}: {message}".replace("\n", " ")


class Until:
    """Field metadata: the table's item carries the field until `actions` used it."""

    def __init__(self, *actions: str) -> None:
        self.actions = frozenset(actions)


# --- a submitted statement ---------------------------------------------------------------


class LoadCounts(Payload):
    """What a finished load did (`myshift.load.LoadCounts`)."""

    rows_staged: int
    rows_replaced: int
    rows_inserted: int
    already_loaded: bool


class Statement(Payload):
    """A submitted Redshift statement as the workflow carries and follows it: every
    Submit task's result (`steps.submitted`), updated by each Follow<...> task; the ASL
    keeps these fields (`infra.definition.STATEMENT_FIELDS`)."""

    statement_id: str | None
    expected_rows: int | None
    manifest_key: str | None
    attempt: int | None
    names: list[str] | None
    status: str
    counts: LoadCounts | None
    polls: int
    poll_seconds: int
    wait_seconds: int


class Follow(Payload):
    """Follow<...>'s event to the Load function (sync and doctor workflows);
    PrepareFailed's `raise_failure` event has the same shape."""

    action: Literal["follow", "raise_failure"]
    statement: Statement
    run_id: str
    raise_on_failure: bool = True


# --- the run ------------------------------------------------------------------------------


class Run(Payload):
    """ValidateInput's output: run-wide values and the table names (names only: 1,000
    tables stay a small payload). PrepareWarehouse adds `prepare`; SyncTables' item
    selector and SummarizeRun read it."""

    pipeline: str
    run_id: str
    mode: Mode
    limit: int | None  # None: the plan sizes the chunks from the table
    max_chunks: int | None
    poll_seconds: int
    max_concurrent_tables: int
    tables: list[str]
    prepare: Statement | None = None


class RunOutcome(Payload):
    """SummarizeRun's output: the execution's output."""

    status: Literal["succeeded", "skipped"]
    run_id: str
    tables: int
    tables_skipped: int
    rows_extracted: int
    rows_loaded: int


# --- a table's run ------------------------------------------------------------------------


class TableItem(Payload):
    """A table of the run as SyncTables' item selector writes it: AcquireLock's input."""

    pipeline: str
    table: str
    run_id: str
    mode: Mode
    limit: int | None  # None: the plan sizes the chunks from the table
    max_chunks: int | None
    poll_seconds: int


class CaughtError(Payload):
    """What a Catch puts at its ResultPath."""

    Error: str
    Cause: str


class FailedTable(TableItem):
    """RecordFailure's input: SyncTable's input with its Catch's error."""

    error: CaughtError


class Chunk(Payload):
    """One chunk of a plan: `lower < key <= upper` (`myshift.plan.Chunk`), or for a
    reconciliation's fix the primary keys to read again (`keys`)."""

    index: int
    lower: Key | None = None
    upper: Key | None = None
    rows: int | None = None
    keys: list[Key] | None = None


class Alters(Payload):
    """PlanAlters' result at `$.alters`: what AlterColumns submits, one entry at a time."""

    statements: list[list[str]]


class VerifyDecision(Payload):
    """VerifySource's result (at `$.verification`): False when there is nothing to verify."""

    verify: bool


class Verified(Payload):
    """VerifyKeys' result (at `$.verified`): keys deleted in the source to remove or mark."""

    deletes: int


class TableRun(TableItem):
    """The table's item from AcquireLock on: what Plan, CommitExtraction, PlanAlters,
    CommitAlters, Load, CommitLoad, NothingToSync, the verification's tasks, CommitDeletes
    and ReleaseLock take (as the event, or its `table`) and the State tasks pass on.

    Fields with a default appear when a state sets them: a `redshift_only` run has no
    plan, a run without new rows no extraction, `skipped` only when another run holds
    the table (LockTaken tests its presence)."""

    # AcquireLock: completed from the pipeline file (`myshift.workflow.table_item`).
    max_concurrent_chunks: int
    strategy: str
    write_mode: str
    lock_lease_seconds: int
    skipped: str | None = None
    # Plan (`myshift.plan.TablePlan.as_dict` and what the handler adds).
    lower_key: Key | None = None
    upper_key: Key | None = None
    bound: Any = None
    chunk_count: int | None = None
    # Rows per chunk: the run's limit or the file's chunk_rows ("setting"), else sized
    # from the table ("table", `myshift.plan.choose_chunk_rows`).
    chunk_rows: int | None = None
    chunk_rows_from: Literal["setting", "table"] | None = None
    planned_rows: int | None = None
    null_cursor_rows: int | None = None
    load_null_cursor: bool | None = None
    chunking: str | None = None
    order_index: str | None = None
    chunks: Annotated[list[Chunk] | None, Until("commit_extraction", "record_empty_run")] = None
    added_columns: list[str] | None = None
    read_from_start: bool | None = None
    column_count: int | None = None
    distributed: bool | None = None
    plan_key: str | None = None
    # CommitExtraction.
    rows_extracted: int | None = None
    files_extracted: int | None = None
    bytes_extracted: int | None = None
    conversion_report: dict[str, dict[str, int]] | None = None
    # PlanAlters, Load (and its Follow), then their commits.
    alters: Annotated[Alters | None, Until("commit_alters")] = None
    load: Annotated[Statement | None, Until("commit_load")] = None
    # CommitLoad or NothingToSync: the outcome of the run's load.
    status: str | None = None
    phase: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    statement_id: str | None = None
    files_loaded: int | None = None
    rows_loaded: int | None = None
    rows_inserted: int | None = None
    rows_replaced: int | None = None
    already_loaded: bool | None = None
    # The verification (`myshift.verification`).
    verification: VerifyDecision | None = None
    verify_statement: Annotated[Statement | None, Until("commit_deletes")] = None
    keys_statement: Annotated[Statement | None, Until("commit_deletes")] = None
    verified: Verified | None = None
    deletes_statement: Annotated[Statement | None, Until("commit_deletes")] = None

    def after(self, action: str, **changes: Any) -> Self:
        """The item `action` passes on: without the fields it was the last to use
        (`Until(action)`), with `changes` set."""
        used = {
            name
            for name, info in type(self).model_fields.items()
            if any(isinstance(m, Until) and action in m.actions for m in info.metadata)
        }
        kept = self.model_dump(exclude_unset=True, exclude=used)
        return type(self).model_validate({**kept, **changes})


class LoadRequest(Payload):
    """What Load's `submit` reads of its event's `table`: the sync's table item, or a
    reconciliation's (LoadFix: `myshift.reconcile`, whose items are not modelled here).
    The one model that ignores unknown fields: each workflow's item carries its own."""

    model_config = ConfigDict(extra="ignore")

    pipeline: str
    table: str
    run_id: str
    poll_seconds: int
    # A reconciliation's item has neither: its files load as a sync's `full` run's.
    mode: Mode | None = None
    write_mode: str | None = None


class TableSummary(Payload):
    """ReleaseLock's, RecordSkipped's and RecordFailure's output: the child execution's
    output, a few fields of the run record (which stays in DynamoDB); only those set."""

    pipeline: str
    table: str
    run_id: str
    status: str | None = None
    rows_extracted: int | None = None
    files_extracted: int | None = None
    rows_loaded: int | None = None
    files_loaded: int | None = None
    error: str | None = None
    cause: str | None = None
    # The verification's record (`myshift.verification.Verification.as_dict`).
    verification: dict[str, Any] | None = None

    @field_validator("cause", mode="before")
    @classmethod
    def _short_cause(cls, value: Any) -> Any:
        return None if value is None else str(value)[:500]

    @classmethod
    def of(cls, record: dict[str, Any]) -> Self:
        """The summary of a run record (its other fields left out, nulls too)."""
        return cls.model_validate(
            {k: record[k] for k in cls.model_fields if record.get(k) is not None}
        )


# --- a table's tasks ---------------------------------------------------------------------


class TableTask(Payload):
    """The event of a task on the table's item: `{"action", "table": <item>}`."""

    action: str
    table: TableRun


class ChunkTask(Payload):
    """ExtractChunks' item selector: one chunk of the table for the Extract function."""

    pipeline: str
    table: str
    run_id: str
    chunk: Chunk
    column_count: int | None
    order_index: str | None


class ChunkResult(Payload):
    """Extract's output (dropped by the Map, `ResultPath: null`; the file is recorded in
    DynamoDB, never in the payload)."""

    index: int
    rows: int
    bytes: int


class AlterItem(Payload):
    """AlterColumns' item selector: one entry of `alters.statements` (SubmitAlter sends
    it as the event's `table`, with its `sqls`)."""

    sqls: list[str]
    pipeline: str
    table: str
    run_id: str
    poll_seconds: int


class AltersPlan(Payload):
    """The Load function's `alters` answer (PlanAlters keeps `alter_statements`)."""

    alter_statements: list[list[str]]


class CollectedKeys(Payload):
    """CollectKeys' answer (dropped: `ResultPath: null`; the keys go to S3)."""

    rows: int
