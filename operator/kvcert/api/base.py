"""The shared base of every kvcert resource model, and the one error type for bad input.

Python attributes are snake_case; the wire (Kubernetes, YAML, the CRDs) is camelCase. One alias
generator does the conversion so that no field can drift from its CRD spelling, and unknown
fields are ignored because the API server already prunes them with the structural schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.config import JsonDict

DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
"""A Kubernetes object name (RFC 1123 subdomain), e.g. a Secret's."""
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
"""A namespace's name (RFC 1123 label, at most 63 characters)."""
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"  # noqa: S105 - a pattern, not a password
"""A key of a Secret's data (Kubernetes' IsConfigMapKey: letters, digits, `-`, `_`, `.`)."""


def cel(rule: str, message: str) -> JsonDict:
    """One CEL rule of a CRD schema (x-kubernetes-validations) with the message users see."""
    return {"rule": rule, "message": message}


def camel(name: str) -> str:
    """`dns_names` -> `dnsNames`; unlike pydantic's `to_camel`, `x5t` stays `x5t`."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class KvModel(BaseModel):
    """Base of every resource model: camelCase on the wire, snake_case in Python, immutable."""

    model_config = ConfigDict(
        alias_generator=camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        frozen=True,
        extra="ignore",
        use_enum_values=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The camelCase dict for a merge patch or a manifest: no `null`s, JSON types only."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ObjectMeta(KvModel):
    """The few metadata fields the operator reads (it never writes metadata through these)."""

    name: str
    namespace: str | None = None
    uid: str = ""
    generation: int = 0
    resource_version: str | None = None
    deletion_timestamp: datetime | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class InvalidResource(ValueError):
    """A resource body that does not satisfy its model.

    `message` is meant for a status condition: it names fields and rules, never the values
    given, because a value may be a secret pasted in the wrong place.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"invalid {kind}: {message}")
        self.kind = kind
        self.message = message

    @classmethod
    def from_validation_error(cls, kind: str, error: ValidationError) -> InvalidResource:
        return cls(kind, describe_errors(error))


def describe_errors(error: ValidationError, limit: int = 5) -> str:
    """One line per problem, `spec.policy.key.size: Input should be 2048, 3072 or 4096`.

    pydantic's `msg` texts do not quote the input (the `input` entry does, and is dropped here);
    the exception is value errors raised by our own validators, which never quote input either.
    """
    lines: list[str] = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(part) for part in item["loc"] if not _is_union_tag(part))
        text = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {text}" if where else text)
    more = len(lines) - limit
    shown = lines[:limit]
    if more > 0:
        shown.append(f"... and {more} more")
    return "; ".join(shown)


def _is_union_tag(part: str | int) -> bool:
    """pydantic puts the chosen union member (`function-after[...]`, `str`) into error paths."""
    return isinstance(part, str) and ("[" in part or part in {"str", "int"})


def section(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    """`body[key]` as a dict; Kubernetes omits empty sections and kopf hands out mappings."""
    value = body.get(key)
    return dict(value) if isinstance(value, Mapping) else {}
