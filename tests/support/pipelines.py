"""Pipeline files as text, for tests that write their own pipelines directory."""

from __future__ import annotations

GOOD = """
name: good
source: {host: db, user: app, password_env: PW, tls: {mode: required}}
target: {database: dev, schema: dw, workgroup: wg}
tables:
  - {name: shop.orders, cursor: updated_at, primary_key: [id]}
"""
"""A minimal valid pipeline: one table, TLS required, no secret."""

PIPELINE = """
name: {name}
source:
  host: mysql.internal.example
  user: sync
  secret_arn: arn:aws:secretsmanager:eu-west-1:111122223333:secret:mysql-AbCdEf
  tls: {{mode: required}}
target: {{database: dev, schema: dw, workgroup: wg}}
schedule: rate(1 hour)
tables:
  - {{name: shop.{name}, cursor: updated_at, primary_key: [id]}}
"""
"""A pipeline `{name}` (str.format) on a remote host with a secret, `tls: {mode: required}`."""
