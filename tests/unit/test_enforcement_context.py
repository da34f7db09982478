"""The condition keys the local twin supplies, so prefix-scoped S3 grants decide as in AWS."""

from __future__ import annotations

from myshift.local import iam
from myshift.local.enforcement import request_context

POLICY = {
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::b",
            "Condition": {"StringLike": {"s3:prefix": ["data/_reconcile/*"]}},
        }
    ]
}


def test_a_listing_supplies_its_prefix() -> None:
    path = "/b?list-type=2&prefix=data%2F_reconcile%2Fp%2Ft%2F&encoding-type=url"
    assert request_context("s3:ListBucket", path) == {"s3:prefix": "data/_reconcile/p/t/"}
    assert request_context("s3:ListBucket", "/b?list-type=2") == {}
    assert request_context("s3:GetObject", "/b/k?prefix=x") == {}


def test_a_prefix_scoped_listing_is_allowed_inside_the_prefix_only() -> None:
    def allowed(path: str) -> bool:
        context = request_context("s3:ListBucket", path)
        return iam.evaluate([POLICY], "s3:ListBucket", "arn:aws:s3:::b", context).allowed

    assert allowed("/b?list-type=2&prefix=data%2F_reconcile%2Frun%2F")
    assert not allowed("/b?list-type=2&prefix=data%2Fpipeline%2F")
    assert not allowed("/b?list-type=2")  # no prefix: the whole bucket, not allowed
