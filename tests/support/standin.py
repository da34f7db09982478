"""Running SQL through the Redshift Data API stand-in directly (no moto server)."""

from __future__ import annotations

import os
import time
from typing import Any

from myshift.local.redshift_standin import CALLER, RedshiftDataStandIn

# The Data API names a role's database user IAMR:<role name>; the stand-in's role folds.
LOADER = f"Standin-Loader-{os.getpid()}"
TARGET = {
    "WorkgroupName": "local",
    "Database": "dev",
    CALLER: f"arn:aws:iam::123456789012:role/{LOADER}",
}
"""The request fields naming the stand-in's database and the LOADER role as the caller."""


def run(
    standin: RedshiftDataStandIn, *sqls: str, target: dict[str, str] = TARGET
) -> dict[str, Any]:
    """One statement, or several as one batch (one transaction); its final description."""
    if len(sqls) == 1:
        submitted = standin.execute_statement({"Sql": sqls[0], **target})
    else:
        submitted = standin.batch_execute_statement({"Sqls": list(sqls), **target})
    return wait(standin, submitted["Id"], target)


def wait(
    standin: RedshiftDataStandIn, statement_id: str, target: dict[str, str] = TARGET
) -> dict[str, Any]:
    """The statement's description once it has finished, failed or been aborted (30 s)."""
    deadline = time.monotonic() + 30
    while True:
        described = standin.describe_statement({"Id": statement_id, CALLER: target[CALLER]})
        if described["Status"] in ("FINISHED", "FAILED", "ABORTED"):
            return described
        assert time.monotonic() < deadline, f"statement still {described['Status']}"
        time.sleep(0.02)
