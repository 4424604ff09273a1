"""Comparison: one pure comparer per store kind, expected + observed -> findings.

No I/O, no clock, no driver, no kopf: everything here is testable with tables of cases.
"""
