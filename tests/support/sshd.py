"""A throwaway OpenSSH sshd on loopback (`scripts/sshd.sh`), for the SSH bastion tests.

`running_sshd(directory)` starts it (installing openssh-server with apt-get when it is
missing and we are root; otherwise the calling test is skipped with what to install)
and yields its KEY=VALUE facts: SSHD_HOST, SSHD_PORT, SSHD_USER, SSHD_KEY,
SSHD_KNOWN_HOSTS, SSHD_HOST_FINGERPRINT...
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

SSHD_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "sshd.sh"


@contextmanager
def running_sshd(directory: Path) -> Iterator[dict[str, str]]:
    """A running sshd whose files live in `directory`; stopped on exit."""
    env = {**os.environ, "PYTHON": sys.executable}
    started = subprocess.run(
        ["bash", str(SSHD_SCRIPT), "start", str(directory)],
        capture_output=True,
        text=True,
        timeout=900,  # may install openssh-server first
        env=env,
        check=False,
    )
    if started.returncode == 3:
        pytest.skip(started.stderr.strip())
    assert started.returncode == 0, started.stderr
    try:
        yield dict(line.split("=", 1) for line in started.stdout.splitlines() if "=" in line)
    finally:
        subprocess.run(["bash", str(SSHD_SCRIPT), "stop", str(directory)], env=env, check=False)


def ssh_settings(sshd: dict[str, str], **changes: Any) -> dict[str, Any]:
    """`source.ssh` for this sshd (a change of None drops the key)."""
    settings: dict[str, Any] = {
        "host": sshd["SSHD_HOST"],
        "port": int(sshd["SSHD_PORT"]),
        "user": sshd["SSHD_USER"],
        "key_file": sshd["SSHD_KEY"],
        "known_hosts": sshd["SSHD_KNOWN_HOSTS"],
    }
    settings.update(changes)
    return {k: v for k, v in settings.items() if v is not None}
