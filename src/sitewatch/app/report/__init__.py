"""Static HTML reports of a workspace."""

from sitewatch.app.report.build import ReportResult, build_report

__all__ = ["ReportResult", "build_report"]
