"""The Powertools logger shared by the handlers (JSON lines, no event payloads)."""

from typing import Any

from aws_lambda_powertools import Logger

logger = Logger(service="myshift")


def tag(**keys: Any) -> None:
    """Keys on every log line of this invocation only.

    Thread-local: the local engine runs concurrent invocations on threads of one
    process, and a warm Lambda must not carry the previous invocation's keys.
    """
    logger.thread_safe_clear_keys()
    logger.thread_safe_append_keys(**keys)
