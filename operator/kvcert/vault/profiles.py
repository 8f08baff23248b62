"""The two behaviours the local vault can show (DESIGN §3.2): `documented` and `service`.

The state machine stores one canonical status per operation; a profile only decides how a few
answers are spelled, so switching profiles never changes what is stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvcert.vault.errors import VaultError

IN_PROGRESS_CONFLICT = (
    "A new key vault certificate can not be created or imported while a pending key vault "
    "certificate's status is inProgress."
)


@dataclass(frozen=True)
class Profile:
    """Every point of DESIGN §3.2, one field each."""

    name: str
    conflict_code: str
    cancel_error_status: int
    cancel_error_code: str
    cancel_error_message: str
    issuer_create_status: str
    cancelled_status: str
    target_has_api_version: bool
    completed_has_status_details: bool

    def conflict(self) -> VaultError:
        """409 on create/import while the pending operation is inProgress."""
        return VaultError(409, self.conflict_code, IN_PROGRESS_CONFLICT)

    def cancel_not_in_progress(self) -> VaultError:
        return VaultError(
            self.cancel_error_status, self.cancel_error_code, self.cancel_error_message
        )

    def target(self, certificate_url: str, api_version: str) -> str:
        if self.target_has_api_version:
            return f"{certificate_url}?api-version={api_version}"
        return certificate_url


DOCUMENTED = Profile(
    name="documented",
    conflict_code="Forbidden",
    cancel_error_status=400,
    cancel_error_code="BadParameter",
    cancel_error_message="Pending certificate operation can not be cancelled: its status is not "
    "inProgress.",
    issuer_create_status="InProgress",
    cancelled_status="canceled",
    target_has_api_version=True,
    completed_has_status_details=True,
)

SERVICE = Profile(
    name="service",
    conflict_code="Conflict",
    cancel_error_status=403,
    cancel_error_code="Forbidden",
    cancel_error_message="Pending status must be in progress to allow update.",
    issuer_create_status="inProgress",
    cancelled_status="cancelled",
    target_has_api_version=False,
    completed_has_status_details=False,
)

PROFILES = {p.name: p for p in (DOCUMENTED, SERVICE)}
