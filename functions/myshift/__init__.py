"""myshift: incremental MySQL -> S3 (Parquet) -> Amazon Redshift sync."""

__version__ = "0.1.0"
