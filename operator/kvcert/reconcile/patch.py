"""JSON merge patches (RFC 7386) of status: computed as a diff, applied to fold a write back.

Decisions compute the *desired* status and send only the difference, so a reconcile that changes
nothing writes nothing: that is what keeps the write budget, and what stops repeated identical
errors from producing a write each.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def merge_patch_diff(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that turns `current` into `desired` (lists are replaced whole)."""
    patch: dict[str, Any] = {}
    for key, want in desired.items():
        have = current.get(key)
        if want is None:
            if key in current:
                patch[key] = None
        elif isinstance(want, Mapping) and isinstance(have, Mapping):
            nested = merge_patch_diff(have, want)
            if nested:
                patch[key] = nested
        elif want != have:
            patch[key] = _strip_nones(want)
    for key in current:
        if key not in desired:
            patch[key] = None
    return patch


def apply_merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """`target` with `patch` applied, as the API server would apply it."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping):
            base = result.get(key)
            result[key] = apply_merge_patch(base if isinstance(base, Mapping) else {}, value)
        else:
            result[key] = value
    return result


def _strip_nones(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _strip_nones(item) for key, item in value.items() if item is not None}
    return value
