"""The pymysql internals `myshift.wire` relies on, checked on a real connection.

One test per entry of `wire.RELIES_ON` (its id is `Owner.name`), each failing with the
attribute or method, what wire expects of it and the pymysql version installed; then
the adapter's three ways of handing a connection back to pymysql (the result read to its
end, a server error mid-result, the connection abandoned), each followed by a query on
the same connection. Run these first when pymysql's pin moves.
"""

from __future__ import annotations

import ast
import codecs
import inspect
import re
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path

import pymysql
import pytest
from myshift import source, wire
from myshift.config import SourceConfig
from pymysql.connections import MySQLResult
from pymysql.constants import CLIENT
from pymysql.protocol import MysqlPacket

from tests.conftest import MYSQL

ROOT = Path(__file__).resolve().parents[2]
PYMYSQL = version("PyMySQL")
SOURCE = SourceConfig(
    host=MYSQL["host"],
    port=MYSQL["port"],
    user=MYSQL["user"],
    password_env="MYSQL_PASSWORD",
    connect_timeout_seconds=3,
    read_timeout_seconds=5,
)
TWO_ROWS = "SELECT 'a' UNION ALL SELECT 'bc'"


@pytest.fixture
def conn() -> Iterator[pymysql.Connection]:
    connection = source.connect(SOURCE, "")
    yield connection
    if connection._result is not None:  # a check left rows on the wire
        connection._result.unbuffered_active = False
    connection._force_close()


def relied(owner: str, name: str) -> str:
    what = {(o, n): w for o, n, w in wire.RELIES_ON}[owner, name]
    return f"pymysql {PYMYSQL}: myshift.wire relies on {owner}.{name} ({what})"


def started(conn: pymysql.Connection, sql: str = TWO_ROWS) -> MySQLResult:
    conn.query(sql, unbuffered=True)
    return conn._result


# --- each entry of RELIES_ON -------------------------------------------------------------


def check_query(conn: pymysql.Connection) -> None:
    parameters = inspect.signature(pymysql.Connection.query).parameters
    assert list(parameters)[:3] == ["self", "sql", "unbuffered"]
    assert parameters["unbuffered"].default is False


def check_result(conn: pymysql.Connection) -> None:
    before = conn._result  # the init_command's result (None on a bare connection)
    result = started(conn)
    assert isinstance(result, MySQLResult) and result is not before


def check_rfile(conn: pymysql.Connection) -> None:
    # After an unbuffered query the socket's reader is at the first row packet: pymysql
    # has read the header and nothing more.
    started(conn)
    rfile = conn._rfile
    assert callable(rfile.read1) and callable(rfile.read)
    first = rfile.read(4 + 2)
    assert first == b"\x02\x00\x00" + bytes([conn._next_seq_id]) + b"\x01a"
    rest = rfile.read1(1 << 20)
    assert isinstance(rest, bytes) and rest.startswith(b"\x03\x00\x00")


def check_next_seq_id(conn: pymysql.Connection) -> None:
    # The command is packet 0; the column count, its definition and their EOF 1 to 3.
    started(conn)
    assert conn._next_seq_id == 4


def check_force_close(conn: pymysql.Connection) -> None:
    parameters = inspect.signature(pymysql.Connection._force_close).parameters
    assert list(parameters) == ["self"]
    conn._force_close()
    assert not conn.open
    conn.connect()
    assert source.query_all(conn, "SELECT 1") == [(1,)]


def check_server_capabilities(conn: pymysql.Connection) -> None:
    flags = wire.server_capabilities(conn)
    assert isinstance(flags, int) and flags & CLIENT.PROTOCOL_41
    # Before the handshake (a refused connection, `tls.refused_plain_login_hint`): 0.
    assert wire.server_capabilities(pymysql.Connection(defer_connect=True)) == 0


def check_encoding(conn: pymysql.Connection) -> None:
    assert isinstance(conn.encoding, str)
    assert codecs.lookup(conn.encoding).name == "utf-8"


def check_client_flag(conn: pymysql.Connection) -> None:
    assert isinstance(conn.client_flag, int)
    assert not conn.client_flag & CLIENT.DEPRECATE_EOF


def check_field_count(conn: pymysql.Connection) -> None:
    assert started(conn, "SELECT 1, 2").field_count == 2


def check_unbuffered_active(conn: pymysql.Connection) -> None:
    # Set False by wire.finish: pymysql then sends the next query without draining rows.
    result = started(conn)
    assert result.unbuffered_active is True


def check_has_next(conn: pymysql.Connection) -> None:
    assert "has_next" in vars(started(conn))


def check_connection(conn: pymysql.Connection) -> None:
    assert started(conn).connection is conn


def check_raise_for_error(conn: pymysql.Connection) -> None:
    payload = b"\xff" + (1242).to_bytes(2, "little") + b"#21000Subquery returns more than 1 row"
    with pytest.raises(pymysql.MySQLError) as raised:
        MysqlPacket(payload, conn.encoding).raise_for_error()
    assert raised.value.args == (1242, "Subquery returns more than 1 row")


CHECKS: dict[str, Callable[[pymysql.Connection], None]] = {
    "Connection.query": check_query,
    "Connection._result": check_result,
    "Connection._rfile": check_rfile,
    "Connection._next_seq_id": check_next_seq_id,
    "Connection._force_close": check_force_close,
    "Connection.server_capabilities": check_server_capabilities,
    "Connection.encoding": check_encoding,
    "Connection.client_flag": check_client_flag,
    "MySQLResult.field_count": check_field_count,
    "MySQLResult.unbuffered_active": check_unbuffered_active,
    "MySQLResult.has_next": check_has_next,
    "MySQLResult.connection": check_connection,
    "MysqlPacket.raise_for_error": check_raise_for_error,
}
OWNERS = {"Connection": pymysql.Connection, "MySQLResult": MySQLResult, "MysqlPacket": MysqlPacket}


@pytest.mark.parametrize(
    ("owner", "name"),
    [(o, n) for o, n, _ in wire.RELIES_ON],
    ids=[f"{o}.{n}" for o, n, _ in wire.RELIES_ON],
)
def test_what_wire_relies_on_is_there(conn: pymysql.Connection, owner: str, name: str) -> None:
    key = f"{owner}.{name}"
    assert key in CHECKS, f"{key} is in wire.RELIES_ON but has no check here: add one"
    kind = getattr(OWNERS[owner], name, None)
    if callable(kind):
        assert inspect.isfunction(kind), f"{relied(owner, name)}: now {kind!r}, not a method"
    try:
        CHECKS[key](conn)
    except (AssertionError, AttributeError, TypeError, ValueError) as exc:
        pytest.fail(f"{relied(owner, name)}: {type(exc).__name__}: {exc}")


def test_every_check_is_of_an_entry() -> None:
    assert set(CHECKS) == {f"{o}.{n}" for o, n, _ in wire.RELIES_ON}


def test_wire_touches_no_private_name_it_does_not_declare() -> None:
    tree = ast.parse((ROOT / "functions/myshift/wire.py").read_text())
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
    }
    declared = {name for _, name, _ in wire.RELIES_ON}
    assert used <= declared, f"wire.py uses {sorted(used - declared)}: add to wire.RELIES_ON"


def test_no_other_module_touches_pymysql_privates() -> None:
    names = "|".join(n for _, n, _ in wire.RELIES_ON if n.startswith("_"))
    pattern = re.compile(rf"\.({names})\b")
    for path in sorted((ROOT / "functions/myshift").rglob("*.py")):
        if path.name != "wire.py":
            assert not pattern.search(path.read_text()), f"{path.name}: go through myshift.wire"


def test_the_installed_pymysql_is_the_pinned_one() -> None:
    for requirements in ("requirements.txt", "layers/requirements.txt"):
        pins = re.findall(r"(?im)^pymysql==(\S+)", (ROOT / requirements).read_text())
        assert pins == [PYMYSQL], f"{requirements} pins pymysql {pins}, installed {PYMYSQL}"


# --- the adapter on a real connection ----------------------------------------------------


def test_a_result_read_to_its_end_leaves_the_connection_to_pymysql(conn) -> None:
    batches = list(source.stream_lines(conn, "SELECT seq FROM mysql.seq_1_to_1000", [], 300))
    assert b"".join(lines for lines, _ in batches) == b"".join(b"%d\n" % n for n in range(1, 1001))
    assert conn._result.unbuffered_active is False
    assert not conn._result.has_next
    assert source.query_all(conn, "SELECT 2, 'x'") == [(2, "x")]


def test_a_server_error_mid_result_is_raised_and_the_connection_kept(conn) -> None:
    sql = "SELECT IF(seq < 5, CAST(seq AS CHAR), (SELECT 1 UNION SELECT 2)) FROM mysql.seq_1_to_9"
    lines = []
    with pytest.raises(pymysql.MySQLError) as raised:
        for batch, _ in source.stream_lines(conn, sql, [], 1):
            lines.append(batch)
    assert raised.value.args[0] == 1242
    assert lines == [b"1\n", b"2\n", b"3\n", b"4\n"]
    assert source.query_all(conn, "SELECT 3") == [(3,)]


def test_an_abandoned_result_closes_the_connection_and_a_reconnect_is_clean(conn) -> None:
    stream = source.stream_lines(conn, "SELECT seq FROM mysql.seq_1_to_100000", [], 10)
    assert next(stream)[1] == 10
    stream.close()
    assert not conn.open
    conn.ping(reconnect=True)
    assert source.query_all(conn, "SELECT 4") == [(4,)]
