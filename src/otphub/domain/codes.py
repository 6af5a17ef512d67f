"""Finding the one-time code in an SMS text.

The code is what the customer types into the service: ``Your code: 48213`` -> ``48213``,
``Telegram code 991-204`` -> ``991204``, ``G-123456 is your Google verification code``
-> ``123456``. Clients split ``STATUS_OK:<code>`` on ``:``, so a code never contains one.
"""

from __future__ import annotations

import re

# Google-style prefixed codes: "G-123456". Tried first because the letter is not part of it.
_PREFIXED = re.compile(r"(?<![\w-])[A-Z]{1,3}-(\d{4,8})(?![\w-])")
# Codes printed in two halves for readability: "991-204", "991 204".
_SPLIT = re.compile(r"(?<![\d-])(\d{3})[- ](\d{3})(?![\d-])")
# A plain run of 4 to 8 digits that is not part of a longer number (phones, amounts).
_PLAIN = re.compile(r"(?<![\d.,-])(\d{4,8})(?![\d]|[.,]\d)")


def extract_code(text: str) -> str:
    for pattern in (_PREFIXED, _SPLIT, _PLAIN):
        match = pattern.search(text)
        if match:
            return "".join(match.groups())
    return text.replace(":", " ")
