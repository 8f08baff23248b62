"""What a Certificate says about its life after the first issuance (issue #15 §2-§5):
when kvcert renews it, how often it looks for versions made elsewhere, the Key Vault tags it
carries, and the annotations a person sets to ask for one renewal or one retry.

Durations are Go durations as cert-manager users write them (`720h`, `1h30m`, `90s`).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

DURATION_PATTERN: Final = r"^([0-9]+(\.[0-9]+)?(h|m|s))+$"
DURATION_MESSAGE: Final = "must be a duration such as 720h, 1h30m or 90s (units h, m, s)"
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(h|m|s)")
_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0}

RENEW_ANNOTATION: Final = "kvcert.io/renew"
"""Any new value asks for one renewal now (recorded in status.handledRequests.renew)."""
RETRY_ANNOTATION: Final = "kvcert.io/retry"
"""Any new value asks for a new create after a failed, cancelled or deleted operation, or a
certificate deleted in Key Vault (recorded in status.handledRequests.retry)."""

RESERVED_TAGS: Final = ("managed-by", "kvcert-uid", "kvcert-owner", "kvcert-intent")
"""Key Vault tags kvcert writes itself to recognise what it created (DESIGN §5)."""
MAX_USER_TAGS: Final = 11
"""Key Vault allows 15 tags per certificate; kvcert keeps 4 of them."""
TAGS_RULE: Final = (
    "self.all(k, !(k in ['managed-by', 'kvcert-uid', 'kvcert-owner', 'kvcert-intent']))"
)
TAGS_MESSAGE: Final = (
    "tags may not set managed-by, kvcert-uid, kvcert-owner or kvcert-intent (kvcert's own)"
)
TAG_NAME_MAX_LENGTH: Final = 512
"""Azure's tag limits (Azure Resource Manager, tag-resources#limitations: a name of at most 512
characters, a value of at most 256), applied to Key Vault's tags."""
TAG_NAMES_RULE: Final = f"self.all(k, size(k) >= 1 && size(k) <= {TAG_NAME_MAX_LENGTH})"
TAG_NAMES_MESSAGE: Final = f"tag names must be 1 to {TAG_NAME_MAX_LENGTH} characters long"
MIN_REFRESH: Final = timedelta(minutes=1)
"""The shortest refreshInterval: each look is a Key Vault read and may be a status write, and
`0s` made a look every second for ever."""
EXISTING_REFRESH: Final = timedelta(hours=1)
"""refreshInterval of a source Existing certificate when the spec sets none (issue #19 §3)."""
EXISTING_JITTER: Final = 0.1
"""A source Existing certificate's looks start up to this share of refreshInterval late (drawn
once per spec), so that certificates applied together do not all look at the same second."""
REFRESH_RULE: Final = "duration(self) >= duration('1m')"
REFRESH_MESSAGE: Final = "refreshInterval must be at least 1m"
RENEW_BEFORE_EXCLUSIVE_RULE: Final = "!(has(self.renewBefore) && has(self.renewBeforePercentage))"
RENEW_BEFORE_EXCLUSIVE_MESSAGE: Final = (
    "renewBefore and renewBeforePercentage are mutually exclusive"
)


def parse_duration(text: str) -> timedelta:
    """`720h` -> 30 days. Raises ValueError for anything DURATION_PATTERN refuses."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"duration {DURATION_MESSAGE}")
    seconds = sum(float(value) * _SECONDS[unit] for value, unit in _PART.findall(text))
    return timedelta(seconds=seconds)
