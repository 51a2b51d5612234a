"""Reporting: tables and figures aggregated from result records."""

from bench.reporting.report import write_report

__all__ = ["write_report"]
