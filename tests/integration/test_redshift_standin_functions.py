"""Redshift functions the stand-in adds to PostgreSQL answer as the Redshift documentation
says: STRTOL (r_STRTOL.html), SHA2 (SHA2.html) and TO_HEX of a VARBYTE (r_TO_HEX.html),
each with the documentation's own examples, through the stand-in's SQL path.

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth); uses its own database.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import Any

import pytest
from myshift.local.redshift_standin import RedshiftDataStandIn

from tests.support.postgres import database_dsn, drop_database
from tests.support.standin import run

TEST_DB = f"myshift_standin_functions_{os.getpid()}"


@pytest.fixture(scope="module")
def standin() -> Iterator[RedshiftDataStandIn]:
    drop_database(TEST_DB)
    dsn = database_dsn(TEST_DB)
    instance = RedshiftDataStandIn(dsn, lambda: None)
    # A second stand-in on the same database replaces the functions without harm.
    RedshiftDataStandIn(dsn, lambda: None).shutdown()
    try:
        yield instance
    finally:
        instance.shutdown()
        drop_database(TEST_DB)


def value(standin: RedshiftDataStandIn, sql: str) -> Any:
    described = run(standin, sql)
    assert described["Status"] == "FINISHED", described.get("Error")
    field = standin.get_statement_result({"Id": described["Id"]})["Records"][0][0]
    return None if field.get("isNull") else next(iter(field.values()))


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        # The examples of r_STRTOL.html.
        ("SELECT STRTOL('0xf', 16)", 15),
        ("SELECT STRTOL('abcd1234', 16)", 2882343476),
        ("SELECT STRTOL('1234567', 10)", 1234567),
        ("SELECT STRTOL('1234567', 8)", 342391),
        ("SELECT STRTOL('110101', 2)", 53),
        # Its rules: white space, a sign, '' is 0, NULL is NULL, 64 signed bits.
        ("SELECT STRTOL('  -ff', 16)", -255),
        ("SELECT STRTOL('', 10)", 0),
        ("SELECT STRTOL(NULL, 16)", None),
        ("SELECT STRTOL('7fffffffffffffff', 16)", 2**63 - 1),
        ("SELECT STRTOL('fffffffffffffff', 16)", 2**60 - 1),  # the checksum's 15 digits
        ("SELECT STRTOL('zz', 36)", 1295),
        # The examples of r_TO_HEX.html: a number (PostgreSQL's own) and a VARBYTE.
        ("SELECT TO_HEX(2147676847)", "8002f2af"),
        ("SELECT TO_HEX('abc'::VARBYTE)", "616263"),
    ],
)
def test_documented_examples(standin: RedshiftDataStandIn, sql: str, expected: Any) -> None:
    assert value(standin, sql) == expected


def test_strtol_out_of_the_signed_64_bit_range_fails(standin: RedshiftDataStandIn) -> None:
    described = run(standin, "SELECT STRTOL('8000000000000000', 16)")
    assert described["Status"] == "FAILED"
    assert "out of the signed 64-bit range" in described["Error"]


@pytest.mark.parametrize("bits", [0, 224, 256, 384, 512])
def test_sha2_is_the_hex_digest_of_the_utf8_bytes(standin: RedshiftDataStandIn, bits: int) -> None:
    text = "Amazon Redshift é😀"
    digest = hashlib.new(f"sha{bits or 256}", text.encode()).hexdigest()
    assert value(standin, f"SELECT SHA2('{text}', {bits})") == digest


def test_sha2_with_other_bits_is_an_empty_string(standin: RedshiftDataStandIn) -> None:
    assert value(standin, "SELECT SHA2('Amazon Redshift', 128)") == ""
