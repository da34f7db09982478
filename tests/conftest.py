"""Shared test settings: fake AWS credentials, the local databases."""

from __future__ import annotations

import os

import pytest

# No test may reach real AWS: fake credentials and a fixed region for every client.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
)
os.environ.setdefault("MYSQL_PASSWORD", "")

MYSQL = {
    "host": os.environ.get("MYSHIFT_TEST_MYSQL_HOST", "127.0.0.1"),
    "port": int(os.environ.get("MYSHIFT_TEST_MYSQL_PORT", "3306")),
    "user": os.environ.get("MYSHIFT_TEST_MYSQL_USER", "root"),
}
POSTGRES_ADMIN_DSN = os.environ.get(
    "MYSHIFT_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def mysql_settings() -> dict:
    return dict(MYSQL)
