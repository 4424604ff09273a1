"""Probes: one module per store kind, each the only importer of its driver.

A probe reads, read-only, and returns observed facts. It never judges and never
writes. Failures leave as StoreUnreachable or AccessDenied, worded "while X: cause".
"""
