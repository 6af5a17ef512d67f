"""Whole numbers as the protocol writes them: ASCII digits, optionally signed.

Python's ``int()`` also accepts ``"1_0"``, ``" 1 "``, fullwidth and Arabic-Indic digits; a
client sending those sent something that is not a number of this protocol.
"""

from __future__ import annotations

import re

_WHOLE = re.compile(r"-?[0-9]{1,19}")
INT64_MAX = 2**63 - 1


def parse_whole(raw: str | None) -> int | None:
    """The integer ``raw`` spells in ASCII digits within BIGINT range, else ``None``."""
    if raw is None or not _WHOLE.fullmatch(raw):
        return None
    value = int(raw)
    return value if -INT64_MAX <= value <= INT64_MAX else None
