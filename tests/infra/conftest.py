"""Synthesized stacks shared by the infra tests (each synthesis takes tens of seconds)."""

from __future__ import annotations

import pytest

from tests.support.synth import Synth, readme_pipelines, synthesize
from tests.support.tls_mariadb import Authority

# Where a deployed stage's alarms go (a deployed stage must say; see StackSettings).
ALARMS = {"alarm_email": "data-platform@example.com"}


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The default stage (cdk.json context, dev) with the deploy guide's production pipeline
    example, as the deploy guide has the reader write it (so the guide cannot drift
    from what synthesizes)."""
    tmp = tmp_path_factory.mktemp("default")
    return synthesize(tmp, ALARMS, pipelines_dir=readme_pipelines(tmp / "pipelines"))


# A provisioned cluster reached with a database user, the MySQL password in a secret.
CLUSTER_PIPELINE = """
name: warehouse
source:
  host: mysql.example.internal
  user: sync
  secret_arn: arn:aws:secretsmanager:eu-west-1:111122223333:secret:mysql-AbCdEf
  tls:
    ca_bundle: certs/mysql-ca.pem
target:
  database: analytics
  schema: dw
  cluster_identifier: analytics-cluster
  db_user: loader
  copy_role_arn: arn:aws:iam::111122223333:role/redshift-copy
tables:
  - name: shop.orders
    cursor: updated_at
    primary_key: [id]
"""

# A serverless workgroup reached with a Secrets Manager secret.
SERVERLESS_PIPELINE = """
name: lake
source:
  host: mysql.example.internal
  user: sync
  secret_arn: arn:aws:secretsmanager:eu-west-1:111122223333:secret:lake-mysql-MnOpQr
  tls: {mode: required}
target:
  database: lake
  schema: raw
  workgroup: lake-wg
  secret_arn: arn:aws:secretsmanager:eu-west-1:111122223333:secret:redshift-GhIjKl
tables:
  - name: shop.items
    cursor: updated_at
    primary_key: [id]
"""


@pytest.fixture(scope="session")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Two unscheduled pipelines (cluster, serverless + secret), context switches flipped."""
    tmp = tmp_path_factory.mktemp("variant")
    pipelines = tmp / "pipelines"
    (pipelines / "certs").mkdir(parents=True)
    Authority.create(pipelines / "certs" / "mysql-ca.pem", "variant CA")
    (pipelines / "warehouse.yml").write_text(CLUSTER_PIPELINE)
    (pipelines / "lake.yml").write_text(SERVERLESS_PIPELINE)
    return synthesize(
        tmp,
        {
            "stage": "prod",
            "lambda_architecture": "x86_64",
            "bucket_versioning": "true",  # strings, as `-c key=value` delivers them
            "access_logs": "false",
            "removal_policy": "destroy",
            "alarms": "none",
        },
        pipelines_dir=pipelines,
    )
