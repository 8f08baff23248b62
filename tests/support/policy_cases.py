"""Subjects that Key Vault refuses: one list for the CRD/model tests and the vault's (issue 14)."""

MALFORMED_SUBJECTS = [
    "not a distinguished name",
    "CN=",
    "CN=a,",
    "=a",
    "FOO=bar",
    'CN="unterminated',
    'CN="a"b',
    'CN=a"b',
    "CN=a\\",
    "CN=#zz",
    "CN=a,,O=b",
]
