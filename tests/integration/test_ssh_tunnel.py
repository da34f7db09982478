"""SSH bastion tunnels: a real OpenSSH sshd on loopback, the real MariaDB behind it.

`scripts/sshd.sh` starts a throwaway sshd (installing openssh-server with apt-get when
it is missing and we are root; otherwise the module is skipped with what to install).
The pipeline's `source.ssh` points at it; MySQL is reached through a `direct-tcpip`
channel that sshd opens to 127.0.0.1:3306.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pymysql
import pytest
import yaml
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from moto import mock_aws
from myshift import state, verify
from myshift.cli import watermark as watermark_cli
from myshift.cli.resources import Resources
from myshift.config import SourceConfig, SshConfig, load_pipeline
from myshift.errors import ConfigError, SourceQueryError, SourceUnavailableError
from myshift.local.engine import free_port
from myshift.tunnel import open_source, open_tunnel
from pydantic import ValidationError

from tests.conftest import MYSQL
from tests.support.aws import create_state_table, stand_in_cli
from tests.support.sshd import running_sshd, ssh_settings

DATABASE = "myshift_ssh_it"
TABLE = "events"
ROWS = 37
PIPELINE = "viabastion"
REGION = "us-east-1"
BUCKET = "ssh-test"
STATE_TABLE = "ssh-state"
BASE = dt.datetime(2025, 8, 1, 12, 0, 0)


# --- fixtures -------------------------------------------------------------------


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A running sshd: SSHD_HOST, SSHD_PORT, SSHD_USER, SSHD_KEY, SSHD_KNOWN_HOSTS..."""
    with running_sshd(tmp_path_factory.mktemp("sshd")) as info:
        yield info


@pytest.fixture(scope="module")
def rows() -> Iterator[list[tuple[int, dt.datetime]]]:
    """`myshift_ssh_it.events` with ROWS rows, one second apart."""
    conn = pymysql.connect(**MYSQL, password="", autocommit=True)
    data = [(i, BASE + dt.timedelta(seconds=i)) for i in range(1, ROWS + 1)]
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
        cursor.execute(f"DROP TABLE IF EXISTS {DATABASE}.{TABLE}")
        cursor.execute(
            f"CREATE TABLE {DATABASE}.{TABLE} (id INT NOT NULL PRIMARY KEY, "
            "updated_at DATETIME(6) NOT NULL, KEY k (updated_at, id))"
        )
        cursor.executemany(f"INSERT INTO {DATABASE}.{TABLE} VALUES (%s, %s)", data)
    yield data
    with conn.cursor() as cursor:
        cursor.execute(f"DROP DATABASE {DATABASE}")
    conn.close()


def source(sshd: dict[str, str], *, mysql_port: int | None = None, **ssh: Any) -> SourceConfig:
    """MySQL as the bastion sees it (127.0.0.1:3306), reached through `sshd`."""
    return SourceConfig(
        host=MYSQL["host"],
        port=mysql_port or MYSQL["port"],
        user=MYSQL["user"],
        password_env="MYSQL_PASSWORD",
        connect_timeout_seconds=5,
        ssh=ssh_settings(sshd, **ssh),
    )


def stray_key(path: Path) -> Path:
    """An ed25519 private key that the bastion does not know."""
    key = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    path.write_bytes(key)
    path.chmod(0o600)
    return path


def refusal(config: SourceConfig, password: str = "", error: type[Exception] = ConfigError) -> str:
    """The message `open_source` fails with, as `error`, before any query."""
    with pytest.raises(error) as caught:
        with open_source(config, password):
            pass
    return str(caught.value)


def query(conn: pymysql.Connection, sql: str) -> tuple:
    with conn.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()


def tunnel_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("myshift-ssh") and t.is_alive()]


# --- through the tunnel -----------------------------------------------------------


def test_queries_go_through_the_bastion(sshd, rows) -> None:
    with open_source(source(sshd), "") as conn:
        assert query(conn, "SELECT 1") == (1,)
        assert query(conn, f"SELECT COUNT(*) FROM {DATABASE}.{TABLE}") == (ROWS,)
        # Our socket ends at the tunnel's local port, not at MySQL's...
        ours = conn._sock.getsockname()
        assert conn._sock.getpeername()[1] != MYSQL["port"]
        # ...and MySQL sees a client other than our socket: sshd's end of the forward.
        (host,) = query(
            conn, "SELECT HOST FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()"
        )
        assert int(host.rsplit(":", 1)[1]) != ours[1]
    log = Path(sshd["SSHD_LOG"]).read_text(errors="replace")
    # sshd opened the channel to MySQL on our behalf.
    assert f"target {MYSQL['host']} port {MYSQL['port']}" in log
    assert not tunnel_threads()


def test_the_local_port_works_only_while_the_tunnel_is_open(sshd, rows) -> None:
    ssh = SshConfig.model_validate(ssh_settings(sshd))
    with open_tunnel(ssh, MYSQL["host"], MYSQL["port"]) as (host, port):
        assert host == "127.0.0.1"
        inside = pymysql.connect(host=host, port=port, user=MYSQL["user"], password="")
        assert query(inside, "SELECT USER()")[0].startswith(f"{MYSQL['user']}@")
        second = pymysql.connect(host=host, port=port, user=MYSQL["user"], password="")
        assert query(second, "SELECT 2") == (2,)  # one channel per connection
        second.close()
    # Closing the tunnel ends the connections through it and frees the port.
    with pytest.raises(pymysql.err.OperationalError):
        inside.ping(reconnect=False)
    with pytest.raises(pymysql.err.OperationalError):
        pymysql.connect(host=host, port=port, user=MYSQL["user"], password="", connect_timeout=2)
    assert not tunnel_threads()


def test_without_ssh_it_connects_directly(rows) -> None:
    direct = SourceConfig(
        host=MYSQL["host"], port=MYSQL["port"], user=MYSQL["user"], password_env="MYSQL_PASSWORD"
    )
    with open_source(direct, "") as conn:
        assert conn._sock.getpeername()[1] == MYSQL["port"]
        assert query(conn, f"SELECT COUNT(*) FROM {DATABASE}.{TABLE}") == (ROWS,)


# --- host keys --------------------------------------------------------------------


def test_pinned_fingerprint_is_accepted(sshd, rows) -> None:
    pinned = source(sshd, known_hosts=None, host_key_fingerprint=sshd["SSHD_HOST_FINGERPRINT"])
    with open_source(pinned, "") as conn:
        assert query(conn, "SELECT 1") == (1,)


def test_wrong_fingerprint_is_refused(sshd) -> None:
    wrong = "SHA256:" + "A" * 43
    message = refusal(source(sshd, known_hosts=None, host_key_fingerprint=wrong))
    assert sshd["SSHD_HOST_FINGERPRINT"] in message and wrong in message
    assert f"{sshd['SSHD_USER']}@127.0.0.1:{sshd['SSHD_PORT']}" in message


def test_unknown_host_is_refused_with_its_fingerprint(sshd, tmp_path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    message = refusal(source(sshd, known_hosts=str(empty)))
    assert "not in" in message and str(empty) in message
    assert sshd["SSHD_HOST_FINGERPRINT"] in message and "\n" not in message


def test_changed_host_key_is_refused(sshd, tmp_path) -> None:
    other = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd['SSHD_PORT']} {other.decode()}\n")
    with pytest.raises(ConfigError, match="host key changed"):
        with open_source(source(sshd, known_hosts=str(known)), ""):
            pass


def test_unchecked_host_key_when_asked(sshd, rows) -> None:
    loose = source(sshd, known_hosts=None, strict_host_key_checking=False)
    with open_source(loose, "") as conn:
        assert query(conn, "SELECT 1") == (1,)


# --- failures: one line, the bastion named, no key material ------------------------


def test_wrong_key_names_the_bastion_not_the_key(sshd, tmp_path) -> None:
    key = stray_key(tmp_path / "stray_ed25519")
    message = refusal(source(sshd, key_file=str(key)))
    assert "\n" not in message
    assert f"SSH bastion {sshd['SSHD_USER']}@127.0.0.1:{sshd['SSHD_PORT']} refused" in message
    assert "source.ssh.key_file" in message
    body = [line for line in key.read_text().splitlines() if not line.startswith("-----")]
    assert body and not any(line in message for line in body)
    assert "PRIVATE KEY" not in message


def test_missing_key_file_is_a_config_error_naming_the_field(sshd, tmp_path) -> None:
    missing = tmp_path / "nope" / "id_ed25519"
    message = refusal(source(sshd, key_file=str(missing)))
    assert message.startswith(f"source.ssh.key_file: {missing} does not exist")


def test_unreadable_key_does_not_echo_the_file(sshd, tmp_path) -> None:
    garbage = tmp_path / "garbage"
    garbage.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWdhcmJhZ2U=\n")
    message = refusal(source(sshd, key_file=str(garbage)))
    assert "is not a private key" in message and "c2VjcmV0" not in message


def test_unreachable_bastion_is_source_unavailable(sshd) -> None:
    port = free_port()
    message = refusal(source(sshd, port=port), error=SourceUnavailableError)
    assert message.startswith(f"SSH bastion {sshd['SSHD_USER']}@127.0.0.1:{port} unreachable")
    assert "\n" not in message


def test_bastion_that_cannot_reach_mysql(sshd) -> None:
    closed = free_port()
    message = refusal(source(sshd, mysql_port=closed), error=SourceUnavailableError)
    assert f"cannot reach MySQL at 127.0.0.1:{closed}" in message
    assert not tunnel_threads()


def test_refused_mysql_login_names_the_real_server(sshd, rows) -> None:
    message = refusal(source(sshd), password="not-the-password", error=SourceQueryError)
    assert f"{MYSQL['user']}@127.0.0.1:{MYSQL['port']} (through SSH bastion" in message
    assert "not-the-password" not in message


# --- the pipeline file ------------------------------------------------------------


def test_config_shape_and_validation(tmp_path) -> None:
    ssh = SshConfig(host="bastion.example.com", user="ops", key_file="~/.ssh/bastion")
    assert ssh.port == 22 and ssh.strict_host_key_checking and ssh.known_hosts is None
    assert ssh.where == "ops@bastion.example.com:22"
    with pytest.raises(ValidationError, match="SHA256"):
        SshConfig(host="b", user="u", key_file="k", host_key_fingerprint="MD5:aa:bb")
    with pytest.raises(ValidationError, match="not both"):
        SshConfig(
            host="b",
            user="u",
            key_file="k",
            known_hosts="kh",
            host_key_fingerprint="SHA256:" + "A" * 43,
        )
    with pytest.raises(ValidationError, match="strict_host_key_checking"):
        SshConfig(
            host="b", user="u", key_file="k", known_hosts="kh", strict_host_key_checking=False
        )
    # A file with an unknown ssh field is refused, naming it.
    bad = tmp_path / "bad.yml"
    bad.write_text(
        yaml.safe_dump(
            pipeline_document({"host": "b", "user": "u", "key_file": "k", "pass": 1}, "bad")
        )
    )
    with pytest.raises(ConfigError, match=r"source\.ssh\.pass"):
        load_pipeline(tmp_path, "bad")


def pipeline_document(ssh: dict[str, Any], name: str = PIPELINE) -> dict[str, Any]:
    return {
        "name": name,
        "source": {
            "host": MYSQL["host"],
            "port": MYSQL["port"],
            "user": MYSQL["user"],
            "password_env": "MYSQL_PASSWORD",
            "ssh": ssh,
        },
        "target": {"database": "dev", "schema": "dw", "workgroup": "wg"},
        "tables": [{"name": f"{DATABASE}.{TABLE}", "cursor": "updated_at", "primary_key": ["id"]}],
    }


# --- the operator commands ----------------------------------------------------------


@pytest.fixture()
def pipelines_dir(tmp_path: Path, sshd: dict[str, str]) -> Path:
    directory = tmp_path / "pipelines"
    directory.mkdir()
    document = pipeline_document(ssh_settings(sshd))
    (directory / f"{PIPELINE}.yml").write_text(yaml.safe_dump(document))
    return directory


@pytest.fixture()
def aws() -> Iterator[Any]:
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        dynamodb = boto3.resource("dynamodb", region_name=REGION)
        create_state_table(dynamodb, STATE_TABLE)
        yield dynamodb.Table(STATE_TABLE)


def resources() -> Resources:
    return Resources(BUCKET, STATE_TABLE, "arn:aws:states:::none", REGION)


@pytest.fixture()
def cli(pipelines_dir: Path):
    group = stand_in_cli(pipelines_dir, resources(), watermark_cli.watermark_count)
    return lambda *args: CliRunner().invoke(group, list(args))


def set_watermark(table: Any, up_to: tuple[int, dt.datetime], count: int) -> None:
    """The watermark after a run that moved `count` rows up to the row `up_to`."""
    row_id, updated_at = up_to
    state.put_watermark(
        table,
        PIPELINE,
        f"{DATABASE}.{TABLE}",
        0,
        {
            "last_key": [updated_at.strftime("%Y-%m-%d %H:%M:%S.%f"), row_id],
            "mysql_rows_extracted": count,
            "redshift_rows_loaded": count,
        },
    )


def test_validate_counts_through_the_bastion(aws, cli, rows, monkeypatch) -> None:
    set_watermark(aws, rows[19], 20)
    state.put_schema(aws, PIPELINE, f"{DATABASE}.{TABLE}", {"primary_key": ["id"]})
    # The warehouse side is not what this test is about: it holds the 20 rows.
    monkeypatch.setattr(verify, "table_exists", lambda *_: True)
    monkeypatch.setattr(verify, "target_counts", lambda *_: (20, 0))
    result = cli(
        "--json", "watermark-count", "validate-counts", "-p", PIPELINE, "-t", f"{DATABASE}.{TABLE}"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # Counted in MariaDB through the tunnel: the 20 rows up to the watermark, not all 37.
    assert report["mysql_rows_up_to_watermark"] == 20
    assert report["differ"] == []
    assert not tunnel_threads()


def test_validate_counts_with_a_wrong_key_exits_2(aws, cli, pipelines_dir, rows, tmp_path) -> None:
    document = yaml.safe_load((pipelines_dir / f"{PIPELINE}.yml").read_text())
    document["source"]["ssh"]["key_file"] = str(stray_key(tmp_path / "stray"))
    (pipelines_dir / f"{PIPELINE}.yml").write_text(yaml.safe_dump(document))
    set_watermark(aws, rows[-1], ROWS)
    result = cli("watermark-count", "validate-counts", "-p", PIPELINE, "-t", f"{DATABASE}.{TABLE}")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: SSH bastion ") and "refused" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
