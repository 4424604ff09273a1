"""The typed error tree crossing module boundaries; catch DatarchError to catch them all.

Messages read "while doing X: cause" and never carry a credential.
"""

from __future__ import annotations


class DatarchError(Exception):
    """Base of every error datarch raises on purpose."""


class ClaimInvalid(DatarchError):
    """The claim document does not validate."""


class SecretUnavailable(DatarchError):
    """A secretRef could not be resolved (missing Secret, missing key, unreadable)."""


class StoreError(DatarchError):
    """A store could not be observed; `reason` is the CamelCase condition reason."""

    reason = "StoreError"


class InvalidConnection(StoreError):
    """The store's address is malformed (a URL, DSN or endpoint no driver can dial)."""

    reason = "InvalidConnection"


class StoreUnreachable(StoreError):
    """Connection refused, DNS failure, TLS failure or timeout."""

    reason = "StoreUnreachable"


class AccessDenied(StoreError):
    """The store answered but refused the credentials or the read."""

    reason = "AccessDenied"


class StoreTimeout(StoreUnreachable):
    """The store did not answer within the claim's timeout."""

    reason = "StoreTimeout"
