"""The sync workflow, written once: a small builder for `statemachines/sync.asl.json`.

The JSON file is what CDK deploys and what the local engine runs; this module is how it
is written (`python -m infra.definition` rewrites it; a test checks that the file is
exactly what the builder writes). Every Lambda task gets the same retry set, and the
Wait / follow / Choice loop that waits for a Redshift statement is written once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from myshift.payloads import Statement

from infra import REPO_ROOT

DEFINITION_FILE = REPO_ROOT / "statemachines" / "sync.asl.json"
DOCTOR_FILE = REPO_ROOT / "statemachines" / "doctor.asl.json"
RECONCILE_FILE = REPO_ROOT / "statemachines" / "reconcile.asl.json"

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
    elif result_path is None:  # the function's answer is dropped: the input goes on
        state["ResultPath"] = None
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


WAREHOUSE = ("WarehouseUnavailableError",)
STORAGE = ("StorageUnavailableError",)
SOURCE_AND_STORAGE = ("SourceUnavailableError", "StorageUnavailableError")


# A submitted statement as the workflow carries it (`myshift.payloads.Statement`).
STATEMENT_FIELDS = tuple(Statement.model_fields)


def follow_statement(
    prefix: str,
    *,
    statement: str,
    finished: str,
    failed: str | None = None,
    comment: str | None = None,
) -> dict[str, State]:
    """`WaitFor<prefix>` -> `Follow<prefix>` -> `<prefix>Finished`: wait for a statement.

    The Load function, which submitted the statement, describes it: the Data API lets
    only the identity that ran a statement (or one that can assume its role) describe
    it, get its result or cancel it. The state machine does the waiting (the wait
    lengthens for long statements), never a sleeping Lambda. Follow raises the
    database's error of a failed statement (the table's Catch records it), unless
    `failed` names a state to go to instead.
    """
    wait_name, follow_name, check_name = f"WaitFor{prefix}", f"Follow{prefix}", f"{prefix}Finished"
    payload: State = {"action": "follow", "statement.$": statement, "run_id.$": "$.run_id"}
    if failed is not None:
        payload["raise_on_failure"] = False
    status = f"{statement}.status"
    choices: list[State] = [{"Variable": status, "StringEquals": "FINISHED", "Next": finished}]
    if failed is not None:
        choices.append({"Variable": status, "StringEquals": "FAILED", "Next": failed})
        choices.append({"Variable": status, "StringEquals": "ABORTED", "Next": failed})
    return {
        wait_name: wait(f"{statement}.wait_seconds", follow_name),
        follow_name: lambda_task(
            "Load",
            payload,
            next_state=check_name,
            retry_on=WAREHOUSE,
            result_selector=_statement_selector(),
            result_path=statement,
            comment=comment,
        ),
        check_name: choice(choices, wait_name),
    }


def _statement_selector() -> State:
    return {f"{field}.$": f"$.Payload.{field}" for field in STATEMENT_FIELDS}


def _extract_chunks(*, distributed: bool, next_state: str = "CommitExtraction") -> State:
    """The chunk Map: inline for small plans; Distributed (its own child executions,
    the plan read from and the results written to S3) for large ones."""
    task = "ExtractChunkDistributed" if distributed else "ExtractChunk"
    state: State = {"Type": "Map"}
    if distributed:
        state["Comment"] = (
            "Large plans: each chunk a child execution (its own history), the chunk list "
            "read from S3, the results written to S3."
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
    config: State = (
        {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"} if distributed else {"Mode": "INLINE"}
    )
    state["ItemProcessor"] = {
        "ProcessorConfig": config,
        "StartAt": task,
        "States": {task: lambda_task("Extract", "$", retry_on=SOURCE_AND_STORAGE)},
    }
    if distributed:
        state["ResultWriter"] = results_writer()
    state["ResultPath"] = None
    state["Next"] = next_state
    return state


def results_writer() -> State:
    """A Distributed Map's results go to S3: they would not fit in a 256 KiB payload."""
    return {
        "Resource": "arn:aws:states:::s3:putObject",
        # Static: moto evaluates a dynamic prefix against the results.
        "Parameters": {"Bucket": "${DataBucketName}", "Prefix": "${MapResultsPrefix}"},
    }


def _state_action(
    action: str, next_state: str | None, *, retry_on: tuple[str, ...] = STORAGE, **kwargs: Any
) -> State:
    """A task of the State function on the table item."""
    return lambda_task(
        "State",
        {"action": action, "table.$": "$"},
        next_state=next_state,
        retry_on=retry_on,
        **kwargs,
    )


def _submit(payload: State, next_state: str, result_path: str, **kwargs: Any) -> State:
    """A Load function task that submits a statement; its id lands at `result_path`."""
    return lambda_task(
        "Load",
        payload,
        next_state=next_state,
        retry_on=(*WAREHOUSE, *STORAGE),
        result_selector=_statement_selector(),
        result_path=result_path,
        **kwargs,
    )


def _alter_columns() -> State:
    """VARCHAR widenings, one statement at a time, each waited for."""
    return {
        "Type": "Map",
        "Comment": "Before the load: VARCHAR widenings (Redshift runs ALTER COLUMN TYPE "
        "only outside a transaction block: each its own statement), and new columns "
        "beyond what fits the load's batch of 40 statements.",
        "ItemsPath": "$.alters.statements",
        "MaxConcurrency": 1,
        "ItemSelector": {
            "sqls.$": "$$.Map.Item.Value",
            "pipeline.$": "$.pipeline",
            "table.$": "$.table",
            "run_id.$": "$.run_id",
            "poll_seconds.$": "$.poll_seconds",
        },
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": "SubmitAlter",
            "States": {
                "SubmitAlter": _submit(
                    {"action": "execute", "sqls.$": "$.sqls", "table.$": "$"},
                    "WaitForAlter",
                    "$.alter",
                ),
                **follow_statement("Alter", statement="$.alter", finished="AlterDone"),
                "AlterDone": {"Type": "Succeed"},
            },
        },
        "ResultPath": None,
        "Next": "CommitAlters",
    }


def _table_states() -> dict[str, State]:
    """The whole flow of one table, one branch of SyncTable."""
    return {
        "AcquireLock": _state_action(
            "acquire_lock",
            "LockTaken",
            comment="Takes the table's lock and completes the item from the pipeline file.",
        ),
        "LockTaken": choice(
            [{"Variable": "$.skipped", "IsPresent": True, "Next": "RecordSkipped"}],
            "RouteMode",
            comment="Another run still holds the table (an overlapping schedule): skip it.",
        ),
        "RecordSkipped": _state_action(
            "record_skipped",
            None,
            comment="The table's run ends as skipped: not a failure, no alarm.",
        ),
        "RouteMode": choice(
            [{"Variable": "$.mode", "StringEquals": "redshift_only", "Next": "PlanAlters"}], "Plan"
        ),
        "Plan": lambda_task("Plan", "$", next_state="HasChunks", retry_on=SOURCE_AND_STORAGE),
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
        "NothingToSync": _state_action("record_empty_run", "ShouldVerify"),
        "ShouldVerify": choice(
            [{"Variable": "$.mode", "StringEquals": "backup_only", "Next": "ReleaseLock"}],
            "VerifySource",
        ),
        "ExtractChunks": _extract_chunks(distributed=False),
        "ExtractChunksDistributed": _extract_chunks(distributed=True),
        "CommitExtraction": _state_action("commit_extraction", "ShouldLoad"),
        "ShouldLoad": choice(
            [{"Variable": "$.mode", "StringEquals": "backup_only", "Next": "ReleaseLock"}],
            "PlanAlters",
        ),
        "PlanAlters": lambda_task(
            "Load",
            {"action": "alters", "table.$": "$"},
            next_state="HasAlters",
            retry_on=STORAGE,
            result_selector={"statements.$": "$.Payload.alter_statements"},
            result_path="$.alters",
        ),
        "HasAlters": choice(
            [{"Variable": "$.alters.statements[0]", "IsPresent": True, "Next": "AlterColumns"}],
            "CommitAlters",
        ),
        "AlterColumns": _alter_columns(),
        "CommitAlters": _state_action("commit_alters", "Load"),
        "Load": _submit({"action": "submit", "table.$": "$"}, "HasStatement", "$.load"),
        "HasStatement": choice(
            [{"Variable": "$.load.statement_id", "IsNull": True, "Next": "NothingToSync"}],
            "WaitForLoad",
        ),
        **follow_statement(
            "Load",
            statement="$.load",
            finished="CommitLoad",
            comment="Checks the staged count against the rows extracted when it finished; "
            "raises LoadError with the database's error text when it failed.",
        ),
        "CommitLoad": _state_action("commit_load", "VerifySource"),
        **_verify_states(),
        "ReleaseLock": _state_action(
            "release_lock", None, comment="Ends with the table's small summary."
        ),
    }


def _verify_states() -> dict[str, State]:
    """Verification after every load (and every run that found nothing new): the source's
    figures per key range (Plan: it reaches MySQL), the warehouse's (Load: it submits and
    reads its statements), the differing ranges narrowed key by key, the outcome in the
    run record; keys deleted in the source removed or marked per the table's policy, in
    one transaction guarded by the ledger. Documents go through S3, never the payload."""

    def verify_task(function: str, action: str, next_state: str, **kwargs: Any) -> State:
        retry = SOURCE_AND_STORAGE if function == "Plan" else (*WAREHOUSE, *STORAGE)
        return lambda_task(
            function,
            {"action": action, "table.$": "$"},
            next_state=next_state,
            retry_on=retry,
            **kwargs,
        )

    return {
        "VerifySource": verify_task(
            "Plan",
            "verify_source",
            "ShouldCompare",
            result_selector={"verify.$": "$.Payload.verify"},
            result_path="$.verification",
            comment="The source's count and hash per key range up to the watermark; "
            "nothing to verify (append, nothing loaded yet) is recorded as skipped.",
        ),
        "ShouldCompare": choice(
            [{"Variable": "$.verification.verify", "BooleanEquals": False, "Next": "ReleaseLock"}],
            "SubmitVerify",
        ),
        "SubmitVerify": _submit(
            {"action": "verify_submit", "table.$": "$"}, "WaitForVerify", "$.verify_statement"
        ),
        **follow_statement("Verify", statement="$.verify_statement", finished="CompareRanges"),
        "CompareRanges": _submit(
            {"action": "verify_compare", "table.$": "$"},
            "HasNarrowing",
            "$.keys_statement",
            comment="Ranges whose counts and hashes agree are verified; the keys of the "
            "others are listed (submitted here, read by CollectKeys).",
        ),
        "HasNarrowing": choice(
            [{"Variable": "$.keys_statement.statement_id", "IsNull": True, "Next": "VerifyKeys"}],
            "WaitForKeys",
        ),
        **follow_statement("Keys", statement="$.keys_statement", finished="CollectKeys"),
        "CollectKeys": verify_task("Load", "verify_collect", "VerifyKeys", result_path=None),
        "VerifyKeys": verify_task(
            "Plan",
            "verify_keys",
            "HasDeletes",
            result_selector={"deletes.$": "$.Payload.deletes"},
            result_path="$.verified",
            comment="The narrowed ranges' keys against the source's; the outcome in the run "
            "record and the Verification metrics.",
        ),
        "HasDeletes": choice(
            [{"Variable": "$.verified.deletes", "NumericGreaterThan": 0, "Next": "SubmitDeletes"}],
            "ReleaseLock",
        ),
        "SubmitDeletes": _submit(
            {"action": "deletes_submit", "table.$": "$"}, "WaitForDeletes", "$.deletes_statement"
        ),
        **follow_statement("Deletes", statement="$.deletes_statement", finished="CommitDeletes"),
        "CommitDeletes": _state_action("commit_deletes", "ReleaseLock"),
    }


def _sync_tables() -> State:
    """A Distributed Map over the tables: each table's run is a child execution.

    A child has its own history (25,000 events each), so the parent's history does
    not grow with tables times chunks; results go to S3 and the summary reads the run
    records, so no payload grows with the number of tables either.
    """
    return {
        "Type": "Map",
        "ItemsPath": "$.tables",
        "MaxConcurrencyPath": "$.max_concurrent_tables",
        # Each table catches its own failures; a child that fails anyway (a Step
        # Functions runtime error) must not stop the other tables. SummarizeRun reports it.
        "ToleratedFailurePercentage": 100.0,  # moto's grammar wants a decimal
        "ItemSelector": {
            "pipeline.$": "$.pipeline",
            "table.$": "$$.Map.Item.Value",
            "run_id.$": "$.run_id",
            "mode.$": "$.mode",
            "limit.$": "$.limit",
            "max_chunks.$": "$.max_chunks",
            "poll_seconds.$": "$.poll_seconds",
        },
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
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
                    comment="Records the failure and releases the lock; the table's summary "
                    "says failed, the other tables go on.",
                ),
            },
        },
        "ResultWriter": results_writer(),
        "ResultPath": None,
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
        "PrepareWarehouse": _submit(
            {"action": "prepare", "run.$": "$"},
            "WarehouseReady",
            "$.prepare",
            comment="Schema and ledger DDL once per run, before tables load in parallel.",
        ),
        "WarehouseReady": choice(
            [{"Variable": "$.prepare.statement_id", "IsNull": True, "Next": "SyncTables"}],
            "WaitForWarehouse",
        ),
        **follow_statement(
            "Warehouse", statement="$.prepare", finished="SyncTables", failed="PrepareAgain"
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
            {"action": "raise_failure", "statement.$": "$.prepare", "run_id.$": "$.run_id"},
            retried=False,
        ),
        "SyncTables": _sync_tables(),
        "SummarizeRun": lambda_task(
            "State",
            {"action": "summarize_run", "run.$": "$"},
            retry_on=STORAGE,
            comment="Reads every table's run record; fails the execution naming every "
            "failed table and its cause.",
        ),
    }
    return {
        "Comment": "myshift sync: validate the input; per table (a child execution each) "
        "lock, plan, extract chunks to S3, commit, load into Redshift in one transaction, "
        "wait, commit, release; summarize.",
        "StartAt": "ValidateInput",
        "States": states,
    }


def _doctor_task(
    function: str,
    action: str,
    next_state: str | None,
    *,
    result: tuple[str, tuple[str, ...]] | None = None,
    **payload: Any,
) -> State:
    """A doctor step of `function`; `result` = (path, fields of the output kept there)."""
    selector, path = None, "$"
    if result is not None:
        path = result[0]
        selector = {f"{name}.$": f"$.Payload.{name}" for name in result[1]}
    return lambda_task(
        function,
        {"action": action, "pipeline.$": "$.pipeline", "run_id.$": "$.run_id", **payload},
        next_state=next_state,
        result_selector=selector,
        result_path=path,
    )


def _caught(state: State, function: str, fallback: str) -> State:
    """Any error of the step becomes a failure row of `function` (the others go on)."""
    state["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": fallback}]
    return state


def _failure_row(function: str) -> State:
    return {
        "Type": "Pass",
        "Parameters": {
            "failed": {
                "function": function,
                "Error.$": "$.error.Error",
                "Cause.$": "$.error.Cause",
            }
        },
        "End": True,
    }


def _warehouse_branch() -> State:
    """Extract writes the canary; Load COPYs it and reads the privileges, following its
    own statements as the load does."""
    extract = _doctor_task(
        "Extract", "doctor", "SubmitWarehouseChecks", result=("$.extract", ("checks", "canary"))
    )
    submit = _doctor_task(
        "Load",
        "doctor_submit",
        "PrivilegesSubmitted",
        result=("$.submit", ("checks", "privileges", "canary")),
        **{"canary.$": "$.extract.canary"},
    )
    results = _doctor_task(
        "Load",
        "doctor_results",
        None,
        result=("$.warehouse", ("checks",)),
        **{"statements.$": "$.submit"},
    )
    return {
        "StartAt": "WriteCanary",
        "States": {
            "WriteCanary": _caught(extract, "Extract", "ExtractFailed"),
            "ExtractFailed": _failure_row("Extract"),
            "SubmitWarehouseChecks": _caught(submit, "Load", "LoadFailed"),
            "PrivilegesSubmitted": choice(
                [
                    {
                        "Variable": "$.submit.privileges",
                        "IsNull": True,
                        "Next": "ReadWarehouseChecks",
                    }
                ],
                "WaitForPrivileges",
            ),
            **_caught_follow("Privileges", "$.submit.privileges", "CanarySubmitted"),
            "CanarySubmitted": choice(
                [{"Variable": "$.submit.canary", "IsNull": True, "Next": "ReadWarehouseChecks"}],
                "WaitForCanary",
            ),
            **_caught_follow("Canary", "$.submit.canary", "ReadWarehouseChecks"),
            "ReadWarehouseChecks": _caught(results, "Load", "LoadFailed"),
            "LoadFailed": _failure_row("Load"),
        },
    }


def _caught_follow(prefix: str, statement: str, then: str) -> dict[str, State]:
    """`follow_statement` whose failed statement goes on (its error becomes a row)."""
    states = follow_statement(prefix, statement=statement, finished=then, failed=then)
    _caught(states[f"Follow{prefix}"], "Load", "LoadFailed")
    return states


def doctor_definition() -> State:
    """The doctor state machine: every function checks what a run needs of it."""
    source = _caught(_doctor_task("Plan", "doctor", None), "Plan", "PlanFailed")
    state = _caught(_doctor_task("State", "doctor", None), "State", "StateFailed")
    return {
        "Comment": "myshift doctor: each function checks, with its own role and from its own "
        "network, what a run needs (MySQL and its grants, S3, DynamoDB, the Data API, the "
        "canary COPY of every column type, the database privileges); one report.",
        "StartAt": "Checks",
        "States": {
            "Checks": {
                "Type": "Parallel",
                "Parameters": {"pipeline.$": "$.pipeline", "run_id.$": "$$.Execution.Name"},
                "Branches": [
                    {
                        "StartAt": "SourceChecks",
                        "States": {"SourceChecks": source, "PlanFailed": _failure_row("Plan")},
                    },
                    _warehouse_branch(),
                    {
                        "StartAt": "StateChecks",
                        "States": {"StateChecks": state, "StateFailed": _failure_row("State")},
                    },
                ],
                "ResultPath": "$.results",
                "Next": "Report",
            },
            "Report": lambda_task(
                "State",
                {
                    "action": "doctor_report",
                    "pipeline.$": "$.pipeline",
                    "run_id.$": "$$.Execution.Name",
                    "results.$": "$.results",
                },
                retry_on=STORAGE,
            ),
        },
    }


def _reconcile_task(function: str, action: str, next_state: str | None, **kwargs: Any) -> State:
    """A reconciliation step of `function` on the table's (or item's) state."""
    retry = {"Plan": SOURCE_AND_STORAGE, "Load": (*WAREHOUSE, *STORAGE)}.get(function, STORAGE)
    return lambda_task(
        function,
        {"action": action, "table.$": "$"},
        next_state=next_state,
        retry_on=retry,
        **kwargs,
    )


def _round_selector() -> State:
    return {f"{name}.$": f"$.Payload.{name}" for name in ("level", "split", "leaves")}


def _compare_items() -> State:
    """A Distributed Map over the table's items (100 key ranges each, read from S3):
    each a child execution comparing, splitting and naming its ranges' rows."""
    item_states: dict[str, State] = {
        "ItemChecksums": _reconcile_task(
            "Plan",
            "reconcile_source",
            "SubmitChecksums",
            result_selector=_round_selector(),
            result_path="$.round",
            comment="MySQL's count and checksum of every column per range: one statement "
            "bounded by the item's keys.",
        ),
        "SubmitChecksums": _submit(
            {"action": "reconcile_submit", "table.$": "$"}, "WaitForChecksums", "$.checksums"
        ),
        **follow_statement("Checksums", statement="$.checksums", finished="CompareChecksums"),
        "CompareChecksums": _reconcile_task(
            "Load",
            "reconcile_compare",
            "RangesDiffer",
            result_selector=_round_selector(),
            result_path="$.round",
            comment="Agreeing ranges are reconciled; differing ones split, or listed when small.",
        ),
        "RangesDiffer": choice(
            [
                {"Variable": "$.round.split", "NumericGreaterThan": 0, "Next": "SplitRanges"},
                {"Variable": "$.round.leaves", "NumericGreaterThan": 0, "Next": "ListRows"},
            ],
            "ItemReconciled",
        ),
        "SplitRanges": _reconcile_task(
            "Plan",
            "reconcile_split",
            "SubmitChecksums",
            result_selector=_round_selector(),
            result_path="$.round",
            comment="Each differing range cut in parts on the key's index; MySQL's figures.",
        ),
        "ListRows": _reconcile_task("Plan", "reconcile_rows", "SubmitListing", result_path=None),
        "SubmitListing": _submit(
            {"action": "reconcile_submit_rows", "table.$": "$"}, "HasListing", "$.listing"
        ),
        "HasListing": choice(
            [{"Variable": "$.listing.statement_id", "IsNull": True, "Next": "NameRows"}],
            "WaitForListing",
        ),
        **follow_statement("Listing", statement="$.listing", finished="NameRows"),
        "NameRows": _reconcile_task(
            "Load",
            "reconcile_name",
            None,
            comment="Both listings compared: each key verified, newer, missing, differing, "
            "duplicated or deleted in the source.",
        ),
        "ItemReconciled": {"Type": "Succeed"},
    }
    return {
        "Type": "Map",
        "Comment": "Each item (100 key ranges) a child execution: its own history.",
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket": "${DataBucketName}", "Key.$": "$.items_key"},
        },
        "MaxConcurrencyPath": "$.max_concurrent_items",
        "ItemSelector": {
            "pipeline.$": "$.pipeline",
            "table.$": "$.table",
            "run_id.$": "$.run_id",
            "poll_seconds.$": "$.poll_seconds",
            "item.$": "$$.Map.Item.Value",
        },
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "ItemChecksums",
            "States": item_states,
        },
        "ResultWriter": results_writer(),
        "ResultPath": None,
        "Next": "SummarizeReconcile",
    }


def _reconcile_table_states() -> dict[str, State]:
    """One table: lock, compare (the items' Map), summarize, fix, release."""
    return {
        "LockForReconcile": _reconcile_task(
            "State",
            "reconcile_lock",
            "PlanReconcile",
            comment="The table's lock, as a sync takes it: no sync changes the table meanwhile.",
        ),
        "PlanReconcile": _reconcile_task("Plan", "reconcile_plan", "ShouldCompare"),
        "ShouldCompare": choice(
            [{"Variable": "$.compare", "BooleanEquals": False, "Next": "ReleaseReconcile"}],
            "CompareItems",
        ),
        "CompareItems": _compare_items(),
        "SummarizeReconcile": _reconcile_task(
            "Plan",
            "reconcile_summarize",
            "ShouldFix",
            comment="The items' results in the table's record; with fix, the chunks that "
            "read the named rows again.",
        ),
        "ShouldFix": choice(
            [
                {"Variable": "$.chunk_count", "NumericGreaterThan": 0, "Next": "ExtractFixChunks"},
                {"Variable": "$.deletes", "NumericGreaterThan": 0, "Next": "SubmitFixDeletes"},
            ],
            "ReleaseReconcile",
        ),
        "ExtractFixChunks": _extract_chunks(distributed=True, next_state="CommitFixExtraction"),
        "CommitFixExtraction": _reconcile_task("State", "reconcile_commit_extraction", "LoadFix"),
        "LoadFix": _submit(
            {"action": "submit", "table.$": "$"},
            "FixLoadSubmitted",
            "$.load",
            comment="The sync's own load: one transaction, the ledger keyed by the files.",
        ),
        "FixLoadSubmitted": choice(
            [{"Variable": "$.load.statement_id", "IsNull": True, "Next": "HasFixDeletes"}],
            "WaitForFixLoad",
        ),
        **follow_statement("FixLoad", statement="$.load", finished="CommitFixLoad"),
        "CommitFixLoad": _reconcile_task("State", "reconcile_commit_load", "HasFixDeletes"),
        "HasFixDeletes": choice(
            [{"Variable": "$.deletes", "NumericGreaterThan": 0, "Next": "SubmitFixDeletes"}],
            "ReleaseReconcile",
        ),
        "SubmitFixDeletes": _submit(
            {"action": "reconcile_deletes_submit", "table.$": "$"},
            "WaitForFixDeletes",
            "$.deletes_statement",
        ),
        **follow_statement(
            "FixDeletes", statement="$.deletes_statement", finished="CommitFixDeletes"
        ),
        "CommitFixDeletes": _reconcile_task(
            "State", "reconcile_commit_deletes", "ReleaseReconcile"
        ),
        "ReleaseReconcile": _reconcile_task(
            "State", "reconcile_release", None, comment="Ends with the table's status."
        ),
    }


def reconcile_definition() -> State:
    """The reconcile state machine (`myshift reconcile`)."""
    tables: State = {
        "Type": "Map",
        "ItemsPath": "$.tables",
        "MaxConcurrencyPath": "$.max_concurrent_tables",
        "ToleratedFailurePercentage": 100.0,
        "ItemSelector": {
            "pipeline.$": "$.pipeline",
            "table.$": "$$.Map.Item.Value",
            "run_id.$": "$.run_id",
            "fix.$": "$.fix",
            "poll_seconds.$": "$.poll_seconds",
        },
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "ReconcileTable",
            "States": {
                "ReconcileTable": {
                    "Type": "Parallel",
                    "Comment": "One branch holding the table's flow, so that one Catch "
                    "records any failure (a table locked by a run: skipped) and releases "
                    "the lock.",
                    "Branches": [
                        {"StartAt": "LockForReconcile", "States": _reconcile_table_states()}
                    ],
                    "OutputPath": "$[0]",
                    "Catch": [
                        {
                            "ErrorEquals": ["States.ALL"],
                            "ResultPath": "$.error",
                            "Next": "RecordReconcileFailure",
                        }
                    ],
                    "End": True,
                },
                "RecordReconcileFailure": _reconcile_task("State", "reconcile_failure", None),
            },
        },
        "ResultWriter": results_writer(),
        "ResultPath": None,
        "Next": "ReconcileReport",
    }
    return {
        "Comment": "myshift reconcile: per table (a child execution each, under the table's "
        "lock) every column of every row due compared per key range, MySQL against "
        "Redshift (a Distributed Map over the ranges), differing ranges split until the rows "
        "are named; with fix, those rows extracted and loaded again as a sync loads them.",
        "StartAt": "ValidateReconcile",
        "States": {
            "ValidateReconcile": lambda_task(
                "ValidateInput",
                {
                    "action": "reconcile",
                    "input.$": "$",
                    "execution_name.$": "$$.Execution.Name",
                },
                next_state="ReconcileTables",
            ),
            "ReconcileTables": tables,
            "ReconcileReport": lambda_task(
                "State",
                {"action": "reconcile_report", "run.$": "$"},
                retry_on=STORAGE,
            ),
        },
    }


DEFINITIONS = {
    DEFINITION_FILE: sync_definition,
    DOCTOR_FILE: doctor_definition,
    RECONCILE_FILE: reconcile_definition,
}


def render(definition: State) -> str:
    """The file's text: indented JSON, one trailing newline."""
    return json.dumps(definition, indent=2, ensure_ascii=False) + "\n"


def write() -> list[Path]:
    """Write every definition file (sync, doctor, reconcile)."""
    for path, build in DEFINITIONS.items():
        path.write_text(render(build()), encoding="utf-8")
    return list(DEFINITIONS)


if __name__ == "__main__":
    for written in write():
        print(f"wrote {written}")
