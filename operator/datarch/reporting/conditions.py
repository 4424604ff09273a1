"""Every condition type and reason the operator writes, each a named constant; nothing else.

Reasons that lower layers produce (store errors, backup judging) are defined there and
listed here, so this module stays the one place to read them all. Reasons are
CamelCase (the Kubernetes convention) and stable: alerts, `kubectl wait
--for=condition=...` and Events key on them, so a rename is a breaking change.
"""

from __future__ import annotations

from typing import Final, Literal

from datarch import backups, errors, verification

ConditionStatus = Literal["True", "False", "Unknown"]

TRUE: Final = "True"
FALSE: Final = "False"
UNKNOWN: Final = "Unknown"

# --- types --------------------------------------------------------------------

# The summary: True only when StoresReachable, Conforming and BackupsFresh are all True.
READY: Final = "Ready"
# Every store could be checked (read, or proved absent as documented).
STORES_REACHABLE: Final = "StoresReachable"
# No findings. Unknown, never True, while some store could not be checked.
CONFORMING: Final = "Conforming"
# Every documented backup ran as documented and recently enough.
BACKUPS_FRESH: Final = "BackupsFresh"

# The order the conditions are written in, summary first.
CONDITION_TYPES: Final = (READY, STORES_REACHABLE, CONFORMING, BACKUPS_FRESH)

# --- reasons: Ready -------------------------------------------------------------

# All three conditions Ready summarises are True.
VERIFIED: Final = "Verified"
# The spec passed the API server's schema but not the operator's own validation.
CLAIM_INVALID: Final = "ClaimInvalid"
# A pass ended without a verdict (it ran out of time, or failed unexpectedly): every
# condition is Unknown until a pass finishes.
VERIFICATION_FAILED: Final = "VerificationFailed"

# --- reasons: StoresReachable -----------------------------------------------------

# Every store was read, or proved absent as documented.
ALL_STORES_REACHABLE: Final = "AllStoresReachable"
# More than one store could not be checked, for different reasons.
STORES_UNREACHABLE: Final = "StoresUnreachable"
# Connection refused, DNS or TLS failure (from datarch.errors.StoreUnreachable).
STORE_UNREACHABLE: Final = errors.StoreUnreachable.reason
# The store did not answer within spec.timeout (datarch.errors.StoreTimeout).
STORE_TIMEOUT: Final = errors.StoreTimeout.reason
# The store refused the credentials or the read (datarch.errors.AccessDenied).
ACCESS_DENIED: Final = errors.AccessDenied.reason
# A probe failed without saying whether the store is unreachable or refusing.
STORE_ERROR: Final = errors.StoreError.reason
# A secretRef could not be resolved: no Secret, no key, not readable.
SECRET_UNAVAILABLE: Final = verification.REASON_SECRET_UNAVAILABLE
# A probe failed in a way it did not anticipate: a bug to report, never a healthy store.
INTERNAL_ERROR: Final = verification.REASON_INTERNAL_ERROR

# --- reasons: Conforming ---------------------------------------------------------

# Every store was checked and nothing differs from the claim.
NO_FINDINGS: Final = "NoFindings"
# At least one finding; the message names the worst.
FINDINGS_PRESENT: Final = "FindingsPresent"
# No findings in the stores that were read, but some could not be read.
STORES_NOT_CHECKED: Final = "StoresNotChecked"
# No findings, every store read, but some documented field could not be read (the
# probe's user lacks a grant, or the server does not show it): also JUnit's error type.
FIELDS_NOT_CHECKED: Final = "FieldsNotChecked"

# --- reasons: BackupsFresh and backups[] ---------------------------------------------

# The claim documents no backups: nothing to be stale.
NO_BACKUPS_DOCUMENTED: Final = "NoBackupsDocumented"
# Every documented backup is fresh.
ALL_BACKUPS_FRESH: Final = "AllBackupsFresh"
# More than one backup is not fresh, for different reasons.
BACKUPS_NOT_FRESH: Final = "BackupsNotFresh"
# One backup: it runs as documented and its last success is within maxAge.
BACKUP_FRESH: Final = backups.BACKUP_FRESH
# The CronJob the claim names does not exist.
CRON_JOB_NOT_FOUND: Final = backups.CRON_JOB_NOT_FOUND
# The CronJob could not be read (forbidden, API server unreachable): freshness unknown.
CRON_JOB_UNREADABLE: Final = backups.CRON_JOB_UNREADABLE
# The CronJob exists but spec.suspend is true: no backup will run.
CRON_JOB_SUSPENDED: Final = backups.CRON_JOB_SUSPENDED
# The CronJob's schedule is not the one the claim documents.
SCHEDULE_MISMATCH: Final = backups.SCHEDULE_MISMATCH
# The CronJob's timeZone is not the one the claim documents.
TIME_ZONE_MISMATCH: Final = backups.TIME_ZONE_MISMATCH
# Neither a succeeded Job nor the CronJob's lastSuccessfulTime shows a success.
NEVER_SUCCEEDED: Final = backups.NEVER_SUCCEEDED
# The last success is older than maxAge (given, or two schedule intervals).
BACKUP_STALE: Final = backups.BACKUP_STALE
# No object under the artifact's bucket/prefix (or no such bucket).
ARTIFACT_MISSING: Final = backups.ARTIFACT_MISSING
# The newest artifact is older than maxAge.
ARTIFACT_STALE: Final = backups.ARTIFACT_STALE
# The newest artifact is smaller than minSizeBytes.
ARTIFACT_TOO_SMALL: Final = backups.ARTIFACT_TOO_SMALL
# The artifact's s3 store could not be read: freshness unknown.
ARTIFACT_UNREADABLE: Final = backups.ARTIFACT_UNREADABLE
