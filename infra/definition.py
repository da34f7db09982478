"""The sync workflow, written once: a small builder for `statemachines/sync.asl.json`.

The JSON file is what CDK deploys and what the local engine runs; this module is how it
is written (`python -m infra.definition` rewrites it; a test checks that the file is
exactly what the builder writes). Every Lambda task gets the same retry set, and the
Wait / follow / Choice loop that waits for a Redshift statement is written once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from infra import REPO_ROOT

DEFINITION_FILE = REPO_ROOT / "statemachines" / "sync.asl.json"

# What AWS recommends retrying on every Lambda task, with its sample's 6 attempts
# ("Handle transient Lambda service exceptions", Step Functions best practices), plus
# the invoke's own throttling (Lambda.TooManyRequestsException).
LAMBDA_SERVICE_ERRORS = (
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)
LAMBDA_SERVICE_ATTEMPTS = 6

State = dict[str, Any]


def retrier(errors: tuple[str, ...], *, attempts: int = 3) -> State:
    """One retrier of the one retry policy: 2 s, doubling, full jitter."""
    return {
        "ErrorEquals": list(errors),
        "IntervalSeconds": 2,
        "MaxAttempts": attempts,
        "BackoffRate": 2,
        "JitterStrategy": "FULL",
    }


def lambda_retry(transient: tuple[str, ...] = ()) -> list[State]:
    """myshift's transient errors (3 attempts), then Lambda's own (AWS's 6 attempts)."""
    retriers = [retrier(transient)] if transient else []
    return [*retriers, retrier(LAMBDA_SERVICE_ERRORS, attempts=LAMBDA_SERVICE_ATTEMPTS)]


def function_arn(function: str) -> str:
    """The substitution CDK (and the local engine) fills with the function's ARN."""
    return "${" + function + "FunctionArn}"


def lambda_task(
    function: str,
    payload: State | str,
    *,
    next_state: str | None = None,
    retry_on: tuple[str, ...] = (),
    result_selector: State | None = None,
    result_path: str | None = "$",
    comment: str | None = None,
    retried: bool = True,
) -> State:
    """A Lambda invoke task with the standard retries.

    `payload` is the Payload object, or a path (`"$"`) passed as the whole payload.
    Without `result_selector` the task's output is the function's return value.
    `retry_on` adds myshift's transient error class names to the Lambda service errors.
    """
    parameters: State = {"FunctionName": function_arn(function)}
    if isinstance(payload, str):
        parameters["Payload.$"] = payload
    else:
        parameters["Payload"] = payload
    state: State = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke"}
    state["Parameters"] = parameters
    if comment:
        state["Comment"] = comment
    if result_selector is not None:
        state["ResultSelector"] = result_selector
        state["ResultPath"] = result_path
    else:
        state["OutputPath"] = "$.Payload"
    if retried:
        state["Retry"] = lambda_retry(retry_on)
    return _then(state, next_state)


def _then(state: State, next_state: str | None) -> State:
    if next_state is None:
        state["End"] = True
    else:
        state["Next"] = next_state
    return state


def choice(choices: list[State], default: str, comment: str | None = None) -> State:
    """A Choice state."""
    state: State = {"Type": "Choice"}
    if comment:
        state["Comment"] = comment
    state["Choices"] = choices
    state["Default"] = default
    return state


def wait(seconds_path: str, next_state: str) -> State:
    """A Wait state whose seconds come from the input."""
    return {"Type": "Wait", "SecondsPath": seconds_path, "Next": next_state}


def poll_statement(
    prefix: str,
    *,
    statement_path: str,
    status_path: str,
    finished: str,
    failed: str,
    aborted: str | None = None,
) -> dict[str, State]:
    """Wait<prefix> -> Describe<prefix> -> <prefix>Finished: the statement-wait loop.

    The state machine waits, never a sleeping Lambda. Returns the three states; the
    loop is entered at `WaitFor<prefix>`.
    """
    wait_name, describe_name, check_name = f"WaitFor{prefix}", f"Describe{prefix}", ""
    check_name = f"{prefix}Finished" if prefix != "Warehouse" else "WarehousePrepared"
    status = f"{status_path}.status"
    return {
        wait_name: wait("$.poll_seconds", describe_name),
        describe_name: {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:redshiftdata:describeStatement",
            "Parameters": {"Id.$": statement_path},
            "ResultSelector": {"status.$": "$.Status"},
            "ResultPath": status_path,
            "Retry": [
                retrier(
                    ("RedshiftData.ThrottlingException", "RedshiftData.InternalServerException"),
                    attempts=5,
                )
            ],
            "Next": check_name,
        },
        check_name: choice(
            [
                {"Variable": status, "StringEquals": "FINISHED", "Next": finished},
                {"Variable": status, "StringEquals": "FAILED", "Next": failed},
                {"Variable": status, "StringEquals": "ABORTED", "Next": aborted or failed},
            ],
            wait_name,
        ),
    }


def _extract_chunks(name: str, *, distributed: bool) -> State:
    """The chunk Map: inline for small plans, Distributed (plan and results on S3) above."""
    task = "ExtractChunkDistributed" if distributed else "ExtractChunk"
    state: State = {"Type": "Map"}
    if distributed:
        state["Comment"] = (
            "Large plans: the chunk list is read from S3 and the results written to S3."
        )
        state["ItemReader"] = {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket": "${DataBucketName}", "Key.$": "$.plan_key"},
        }
    else:
        state["ItemsPath"] = "$.chunks"
    state["MaxConcurrencyPath"] = "$.max_concurrent_chunks"
    state["ItemSelector"] = {
        "pipeline.$": "$.pipeline",
        "table.$": "$.table",
        "run_id.$": "$.run_id",
        "chunk.$": "$$.Map.Item.Value",
        "column_count.$": "$.column_count",
        "order_index.$": "$.order_index",
    }
    config: State = {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"} if distributed else {
        "Mode": "INLINE"
    }
    state["ItemProcessor"] = {
        "ProcessorConfig": config,
        "StartAt": task,
        "States": {
            task: lambda_task(
                "Extract", "$", retry_on=("SourceUnavailableError", "StorageUnavailableError")
            )
        },
    }
    if distributed:
        state["ResultWriter"] = {
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": "${DataBucketName}", "Prefix": "${MapResultsPrefix}"},
        }
    state["ResultPath"] = None
    state["Next"] = "CommitExtraction"
    return state


def _state_action(action: str, next_state: str | None, **kwargs: Any) -> State:
    """A task of the State function on the table item."""
    return lambda_task(
        "State",
        {"action": action, "table.$": "$"},
        next_state=next_state,
        retry_on=kwargs.pop("retry_on", ("StorageUnavailableError",)),
        **kwargs,
    )


def _table_states() -> dict[str, State]:
    """The whole per-table flow, one branch of SyncTable."""
    storage = ("StorageUnavailableError",)
    states: dict[str, State] = {
        "AcquireLock": _state_action("acquire_lock", "RouteMode"),
        "RouteMode": choice(
            [{"Variable": "$.mode", "StringEquals": "redshift_only", "Next": "PlanAlters"}], "Plan"
        ),
        "Plan": lambda_task(
            "Plan",
            "$",
            next_state="HasChunks",
            retry_on=("SourceUnavailableError", "StorageUnavailableError"),
        ),
        "HasChunks": choice(
            [
                {
                    "And": [
                        {"Variable": "$.chunk_count", "NumericGreaterThan": 0},
                        {"Variable": "$.distributed", "BooleanEquals": True},
                    ],
                    "Next": "ExtractChunksDistributed",
                },
                {"Variable": "$.chunk_count", "NumericGreaterThan": 0, "Next": "ExtractChunks"},
            ],
            "NoNewRows",
        ),
        "NoNewRows": choice(
            [{"Variable": "$.mode", "StringEquals": "backup_only", "Next": "NothingToSync"}],
            "PlanAlters",
            comment="Files of an earlier run whose load failed still load now.",
        ),
        "NothingToSync": _state_action("record_empty_run", "ReleaseLock"),
        "ExtractChunks": _extract_chunks("ExtractChunks", distributed=False),
        "ExtractChunksDistributed": _extract_chunks("ExtractChunksDistributed", distributed=True),
        "CommitExtraction": _state_action("commit_extraction", "ShouldLoad"),
        "ShouldLoad": choice(
            [{"Variable": "$.mode", "StringEquals": "backup_only", "Next": "ReleaseLock"}],
            "PlanAlters",
        ),
        "PlanAlters": lambda_task(
            "Load",
            {"action": "alters", "table.$": "$"},
            next_state="HasAlters",
            retry_on=storage,
            comment="VARCHAR widenings Redshift runs only outside a transaction.",
            result_selector={"statements.$": "$.Payload.alter_statements"},
            result_path="$.alters",
        ),
        "HasAlters": choice(
            [
                {
                    "Variable": "$.alters.statements[0]",
                    "IsPresent": True,
                    "Next": "AlterColumns",
                }
            ],
            "Load",
        ),
        "AlterColumns": {
            "Type": "Map",
            "ItemsPath": "$.alters.statements",
            "MaxConcurrency": 1,
            "ItemSelector": {
                "sql.$": "$$.Map.Item.Value",
                "pipeline.$": "$.pipeline",
                "table.$": "$.table",
                "run_id.$": "$.run_id",
                "poll_seconds.$": "$.poll_seconds",
            },
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "SubmitAlter",
                "States": {
                    "SubmitAlter": lambda_task(
                        "Load",
                        {"action": "execute", "sql.$": "$.sql", "table.$": "$"},
                        next_state="WaitForAlter",
                        retry_on=("WarehouseUnavailableError",),
                        result_selector={"statement_id.$": "$.Payload.statement_id"},
                        result_path="$.load",
                    ),
                    **poll_statement(
                        "Alter",
                        statement_path="$.load.statement_id",
                        status_path="$.load_status",
                        finished="AlterDone",
                        failed="AlterFailed",
                    ),
                    "AlterFailed": lambda_task(
                        "Load", {"action": "raise_failure", "table.$": "$"}, retried=False
                    ),
                    "AlterDone": {"Type": "Succeed"},
                },
            },
            "ResultPath": None,
            "Next": "CommitAlters",
        },
        "CommitAlters": _state_action("commit_alters", "Load"),
        "Load": lambda_task(
            "Load",
            {"action": "submit", "table.$": "$"},
            next_state="HasStatement",
            retry_on=("WarehouseUnavailableError", "StorageUnavailableError"),
            result_selector={
                "statement_id.$": "$.Payload.statement_id",
                "expected_rows.$": "$.Payload.expected_rows",
                "manifest_key.$": "$.Payload.manifest_key",
            },
            result_path="$.load",
        ),
        "HasStatement": choice(
            [{"Variable": "$.load.statement_id", "IsNull": True, "Next": "NothingToSync"}],
            "WaitForLoad",
        ),
        **poll_statement(
            "Load",
            statement_path="$.load.statement_id",
            status_path="$.load_status",
            finished="CommitLoad",
            failed="LoadFailed",
        ),
        "LoadFailed": lambda_task(
            "Load",
            {"action": "raise_failure", "table.$": "$"},
            retried=False,
            comment="Raises LoadError with the database's error text, so the Catch records it.",
        ),
        "CommitLoad": _state_action(
            "commit_load",
            "ReleaseLock",
            retry_on=("StorageUnavailableError", "WarehouseUnavailableError"),
        ),
        "ReleaseLock": _state_action("release_lock", None),
    }
    return states


def _sync_tables() -> State:
    """The Map over tables: each table's flow in one Parallel branch with one Catch."""
    return {
        "Type": "Map",
        "ItemsPath": "$.tables",
        "MaxConcurrencyPath": "$.max_concurrent_tables",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": "SyncTable",
            "States": {
                "SyncTable": {
                    "Type": "Parallel",
                    "Comment": "One branch holding the whole per-table flow, so that one "
                    "Catch records any failure and releases the lock.",
                    "Branches": [{"StartAt": "AcquireLock", "States": _table_states()}],
                    "OutputPath": "$[0]",
                    "Catch": [
                        {
                            "ErrorEquals": ["States.ALL"],
                            "ResultPath": "$.error",
                            "Next": "RecordFailure",
                        }
                    ],
                    "End": True,
                },
                "RecordFailure": _state_action(
                    "record_failure",
                    None,
                    comment="Records the failure, releases the lock; the table's result says "
                    "failed, other tables go on.",
                ),
            },
        },
        "ResultPath": "$.results",
        "Next": "SummarizeRun",
    }


def sync_definition() -> State:
    """The whole sync state machine."""
    states: dict[str, State] = {
        "ValidateInput": lambda_task(
            "ValidateInput",
            {"input.$": "$", "execution_name.$": "$$.Execution.Name"},
            next_state="PrepareWarehouse",
        ),
        "PrepareWarehouse": lambda_task(
            "Load",
            {"action": "prepare", "run.$": "$"},
            next_state="WarehouseReady",
            retry_on=("WarehouseUnavailableError",),
            comment="Schema and ledger DDL once per run, before tables load in parallel.",
            result_selector={
                "statement_id.$": "$.Payload.statement_id",
                "attempt.$": "$.Payload.attempt",
            },
            result_path="$.prepare",
        ),
        "WarehouseReady": choice(
            [{"Variable": "$.prepare.statement_id", "IsNull": True, "Next": "SyncTables"}],
            "WaitForWarehouse",
        ),
        **poll_statement(
            "Warehouse",
            statement_path="$.prepare.statement_id",
            status_path="$.prepare_status",
            finished="SyncTables",
            failed="PrepareAgain",
            aborted="PrepareFailed",
        ),
        "PrepareAgain": choice(
            [
                {
                    "Variable": "$.prepare.attempt",
                    "NumericLessThan": 3,
                    "Next": "WaitBeforePreparingAgain",
                }
            ],
            "PrepareFailed",
            comment="The DDL is idempotent; another execution creating the same schema at "
            "the same moment fails ours once (Redshift and PostgreSQL both), so submit it "
            "again.",
        ),
        "WaitBeforePreparingAgain": wait("$.poll_seconds", "PrepareWarehouse"),
        "PrepareFailed": lambda_task(
            "Load",
            {
                "action": "raise_failure",
                "table": {"load.$": "$.prepare", "run_id.$": "$.run_id", "table": "(warehouse)"},
            },
            retried=False,
        ),
        "SyncTables": _sync_tables(),
        "SummarizeRun": lambda_task(
            "State",
            {"action": "summarize_run", "results.$": "$.results"},
            retry_on=("StorageUnavailableError",),
            comment="Fails the execution naming every failed table and its cause.",
        ),
    }
    return {
        "Comment": "myshift sync: validate the input; per table lock, plan, extract chunks to "
        "S3, commit, load into Redshift in one transaction, wait, commit, release; summarize.",
        "StartAt": "ValidateInput",
        "States": states,
    }


def render(definition: State) -> str:
    """The file's text: indented JSON, one trailing newline."""
    return json.dumps(definition, indent=2, ensure_ascii=False) + "\n"


def write(path: Path = DEFINITION_FILE) -> Path:
    """Write the sync definition to `path`."""
    path.write_text(render(sync_definition()), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(f"wrote {write(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFINITION_FILE)}")
