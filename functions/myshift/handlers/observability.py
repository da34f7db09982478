"""The Powertools logger shared by the handlers (JSON lines, no event payloads)."""

from aws_lambda_powertools import Logger

logger = Logger(service="myshift")
