"""Helpers the integration and end-to-end tests share (no fixtures: plain functions)."""
