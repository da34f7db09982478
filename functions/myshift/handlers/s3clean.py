"""Lambda: the nightly S3 clean-up of every table of every pipeline.

Event (all optional): `{"older_than": "30d", "dry_run": false}`; a schedule without
input sends EventBridge's own event, which means the defaults. Only loaded files (and
old manifests) older than the cutoff go; unloaded files are never touched here.
"""

import datetime as dt
from typing import Any

from myshift import clean, runtime
from myshift.config import load_pipelines
from myshift.errors import InputError
from myshift.handlers.observability import instrumented, logger
from myshift.settings import current_settings


@instrumented
def handler(event: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    event = event or {}
    older_than = event.get("older_than") or clean.DEFAULT_SCHEDULED_AGE
    dry_run = event.get("dry_run", False)
    if not isinstance(older_than, str) or not isinstance(dry_run, bool):
        raise InputError("s3clean event: older_than must be a string like '30d', dry_run a bool")
    settings = current_settings()
    result = clean.scheduled_clean(
        runtime.s3(),
        runtime.state_table(),
        bucket=settings.bucket,
        data_prefix=settings.data_prefix,
        pipelines=load_pipelines(settings.pipelines_dir).values(),
        now=dt.datetime.now(dt.UTC),
        older_than=older_than,
        dry_run=dry_run,
    )
    logger.info("s3clean", extra={k: v for k, v in result.items() if k != "by_table"})
    return result
