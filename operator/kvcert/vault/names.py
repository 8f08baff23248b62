"""Subjects as Key Vault writes them: X.500 names such as `CN=a, O="B, Inc.", S=Texas`.

Not strict RFC 4514: spaces after separators, `;` as a separator, quoted values and Windows'
attribute keywords (`S` and `ST` are the state, `E` the e-mail address) are all accepted, and
RFC 4514 strings (backslash escapes, `#` hex values, dotted OIDs) still parse. Every problem is a
`ValueError` whose text never quotes the input.
"""

from __future__ import annotations

import re
import string

from cryptography import x509
from cryptography.x509.oid import NameOID

# The attribute keywords Key Vault reads in a subject (those of Windows' X.500 name strings),
# matched case-insensitively; any other attribute is written as a dotted OID (`OID.` optional).
SUBJECT_KEYWORDS: dict[str, x509.ObjectIdentifier] = {
    "CN": NameOID.COMMON_NAME,
    "C": NameOID.COUNTRY_NAME,
    "L": NameOID.LOCALITY_NAME,
    "S": NameOID.STATE_OR_PROVINCE_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "E": NameOID.EMAIL_ADDRESS,
    "EMAIL": NameOID.EMAIL_ADDRESS,
    "STREET": NameOID.STREET_ADDRESS,
    "T": NameOID.TITLE,
    "TITLE": NameOID.TITLE,
    "G": NameOID.GIVEN_NAME,
    "GIVENNAME": NameOID.GIVEN_NAME,
    "I": NameOID.INITIALS,
    "INITIALS": NameOID.INITIALS,
    "SN": NameOID.SURNAME,
    "DC": NameOID.DOMAIN_COMPONENT,
    "UID": NameOID.USER_ID,
    "SERIALNUMBER": NameOID.SERIAL_NUMBER,
    "POSTALCODE": NameOID.POSTAL_CODE,
    "DNQUALIFIER": NameOID.DN_QUALIFIER,
    "DESCRIPTION": x509.ObjectIdentifier("2.5.4.13"),
    "POBOX": x509.ObjectIdentifier("2.5.4.18"),
    "PHONE": x509.ObjectIdentifier("2.5.4.20"),
    "UNSTRUCTUREDNAME": x509.ObjectIdentifier("1.2.840.113549.1.9.2"),
}
_OID_TEXT = re.compile(r"^(?:OID\.)?([0-2](?:\.(?:0|[1-9][0-9]*))+)$", re.IGNORECASE)
_SEPARATORS = ",;+"


def parse(subject: str) -> x509.Name:
    """Parse a subject as Key Vault writes it: `CN=a, O="B, Inc.", S=Texas` (X.500 names).

    RDNs are separated by `,` or `;` (spaces around them are ignored), attributes of one RDN by
    `+`; a value is plain text (RFC 4514 backslash escapes allowed), a quoted string (`""` is a
    quote) or `#` and hex DER. As in RFC 4514 the first RDN written is the last one encoded.
    """
    rdns: list[list[x509.NameAttribute[str]]] = [[]]
    pos = 0
    while True:
        equals = subject.find("=", pos)
        if equals < 0:
            raise ValueError("an attribute without `=`")
        oid = _attribute_type(subject[pos:equals].strip())
        value, pos = _attribute_value(subject, equals + 1)
        rdns[-1].append(x509.NameAttribute(oid, value))
        if pos == len(subject):
            break
        if subject[pos] != "+":
            rdns.append([])
        pos += 1
    try:
        name = x509.Name([x509.RelativeDistinguishedName(rdn) for rdn in reversed(rdns)])
        name.public_bytes()  # every value must be encodable in its ASN.1 string type
    except TypeError as exc:
        raise ValueError("a value that cannot be encoded") from exc
    return name


def is_oid(text: str) -> bool:
    """A dotted OID that can be encoded (`1.3.6.1.5.5.7.3.1`; no `OID.` prefix, no `1.40`)."""
    match = _OID_TEXT.match(text)
    if match is None or match.group(1) != text:
        return False
    try:
        x509.ObjectIdentifier(text)
    except ValueError:
        return False
    return True


def _attribute_type(text: str) -> x509.ObjectIdentifier:
    oid = SUBJECT_KEYWORDS.get(text.upper())
    if oid is not None:
        return oid
    dotted = _OID_TEXT.match(text)
    if dotted is None:
        raise ValueError("unknown attribute type")
    return x509.ObjectIdentifier(dotted.group(1))


def _attribute_value(text: str, pos: int) -> tuple[str, int]:
    """The value starting at `pos` (after `=`) and the index of the separator that ends it."""
    while text.startswith(" ", pos):
        pos += 1
    if text.startswith('"', pos):
        return _quoted_value(text, pos + 1)
    return _plain_value(text, pos)


def _quoted_value(text: str, pos: int) -> tuple[str, int]:
    chars: list[str] = []
    while True:
        if pos >= len(text):
            raise ValueError("unterminated quoted value")
        char, after = text[pos], text[pos + 1 : pos + 2]
        if char == '"' and after != '"':
            break
        if char in '"\\' and after:  # `""` or a backslash escape
            chars.append(after)
            pos += 2
        else:
            chars.append(char)
            pos += 1
    pos += 1
    while text.startswith(" ", pos):
        pos += 1
    if pos < len(text) and text[pos] not in _SEPARATORS:
        raise ValueError("text after a quoted value")
    return "".join(chars), pos


def _plain_value(text: str, pos: int) -> tuple[str, int]:
    is_hex = text.startswith("#", pos)
    raw = bytearray()
    kept = 0  # length of `raw` up to its last escaped or non-space character
    while pos < len(text) and text[pos] not in _SEPARATORS:
        char = text[pos]
        if char == '"':
            raise ValueError("a quote inside an unquoted value")
        if char == "\\":
            pair = text[pos + 1 : pos + 3]
            if len(pair) == 2 and all(c in string.hexdigits for c in pair):
                raw += bytes.fromhex(pair)
                pos += 3
            elif pair:
                raw += pair[0].encode()
                pos += 2
            else:
                raise ValueError("a trailing backslash")
            kept = len(raw)
            continue
        raw += char.encode()
        pos += 1
        if char != " ":
            kept = len(raw)
    value = bytes(raw[:kept]).decode()
    if is_hex:
        return _hex_value(value), pos
    if not value:
        raise ValueError("an empty value")
    return value, pos


def _hex_value(text: str) -> str:
    """`#0c03616263`: the DER of a string value (how RFC 4514 writes unnamed attributes)."""
    der = bytes.fromhex(text[1:])
    if len(der) < 2 or der[0] not in (0x0C, 0x13, 0x14, 0x16, 0x1E) or der[1] != len(der) - 2:
        raise ValueError("an unsupported hex value")
    body = der[2:]
    return body.decode("utf-16-be") if der[0] == 0x1E else body.decode()
