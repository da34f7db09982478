"""The MySQL password from Secrets Manager (`runtime.source_password`): a string, or
JSON with `password`; anything else a ConfigError, not a login with a wrong password."""

from __future__ import annotations

from typing import Any

import pytest
from myshift import runtime
from myshift.config import SourceConfig
from myshift.errors import ConfigError

SOURCE = SourceConfig(host="127.0.0.1", user="sync", secret_arn="arn:aws:secretsmanager:x")


class Provider:
    def __init__(self, value: Any) -> None:
        self.value = value

    def get(self, name: str, max_age: int) -> Any:
        assert name == SOURCE.secret_arn
        return self.value


@pytest.mark.parametrize(
    ("stored", "password"),
    [("s3cret", "s3cret"), ('{"password": "pw", "username": "sync"}', "pw")],
)
def test_a_string_or_json_secret_gives_the_password(
    monkeypatch: pytest.MonkeyPatch, stored: str, password: str
) -> None:
    monkeypatch.setattr(runtime, "secrets", lambda: Provider(stored))
    assert runtime.source_password(SOURCE) == password


@pytest.mark.parametrize("stored", ['{"user": "sync"}', "{not json", b"s3cret"])
def test_any_other_secret_is_a_config_error(monkeypatch: pytest.MonkeyPatch, stored: Any) -> None:
    # A binary secret (SecretBinary) used to become the password "b's3cret'".
    monkeypatch.setattr(runtime, "secrets", lambda: Provider(stored))
    with pytest.raises(ConfigError, match="source secret must be a string or JSON"):
        runtime.source_password(SOURCE)
