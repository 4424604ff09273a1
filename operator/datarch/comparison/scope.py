"""What strict mode counts: an object is in scope when one of its names matches a `scope` glob.

Pure. Every comparer asks here, so `scope` means the same for every store kind.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence


def in_scope(scope: Sequence[str], *names: str) -> bool:
    """True when `scope` is empty or any glob matches any of the object's names.

    An object may go by several names (`users` and `public.users`, a KV bucket
    and its `KV_` stream): a glob naming any of them counts it.
    """
    if not scope:
        return True
    return any(fnmatch.fnmatchcase(name, glob) for glob in scope for name in names)
