"""Reporting: verdicts as status, Events, metrics and CLI output; the only place that formats them."""
