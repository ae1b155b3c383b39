"""Assay: an open platform for AI benchmarks, challenges and audits."""

__version__ = "0.1.0"
