"""Definitions checked as Step Functions checks them, before the local engine runs one.

moto's interpreter runs definitions AWS refuses at CreateStateMachine (a state name
used twice in nested Maps, a `Next` naming no state, unreachable states). The pinned
`asl-validator` (npm, `tools/package.json`, installed by `make venv`) checks them
offline; the local engine refuses what it refuses, with its message.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from myshift.errors import ConfigError

_REPOSITORY = Path(__file__).resolve().parents[3]
VALIDATOR = _REPOSITORY / "tools" / "node_modules" / ".bin" / "asl-validator"

_accepted: set[str] = set()
_lock = threading.Lock()


class InvalidDefinitionError(ConfigError):
    """Step Functions would refuse this state machine definition."""


def validator_command() -> list[str]:
    """The asl-validator command line, or a ConfigError saying how to install it."""
    if not VALIDATOR.is_file():
        raise ConfigError(
            f"asl-validator is not installed ({VALIDATOR} missing): run `make venv` "
            "(it runs `npm ci` in tools/; needs Node.js and npm)"
        )
    if shutil.which("node") is None:
        raise ConfigError("asl-validator needs Node.js: install node (18 or newer)")
    return [str(VALIDATOR)]


def validate_definition(definition: str) -> None:
    """Raise InvalidDefinitionError with the validator's findings if AWS would refuse it.

    A definition already accepted in this process is not checked again (the engine
    creates the same state machine in every test session).
    """
    digest = hashlib.sha256(definition.encode("utf-8")).hexdigest()
    with _lock:
        if digest in _accepted:
            return
    try:
        json.loads(definition)
    except ValueError as exc:
        raise InvalidDefinitionError(f"state machine definition is not JSON: {exc}") from None
    with tempfile.NamedTemporaryFile("w", suffix=".asl.json", encoding="utf-8") as file:
        file.write(definition)
        file.flush()
        result = subprocess.run(
            [*validator_command(), "--json-path", file.name],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    if result.returncode != 0:
        findings = [
            line.strip()
            for line in (result.stdout + result.stderr).splitlines()
            if line.strip() and "is invalid" not in line
        ]
        raise InvalidDefinitionError(
            "state machine definition refused by asl-validator (as Step Functions would "
            f"refuse it): {'; '.join(findings) or 'exit ' + str(result.returncode)}"
        )
    with _lock:
        _accepted.add(digest)
