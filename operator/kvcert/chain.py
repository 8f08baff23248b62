"""Order a certificate chain the way TLS wants it, whatever order it came in.

One function, `order`, serves every path that carries a chain: the PEM and PKCS#12 secrets Key
Vault hands out (after a create, a merge or an import) and the single certificate of a
non-exportable key, which become the output Secret (`tls_secret`), and the chain the operator
merges from `spec.mergeFrom` (`order_der`: Key Vault's merge wants the leaf first).

The rules, in order:

1. **Links.** A certificate is linked to its issuer when its issuer name is the other's subject
   *and* the other's key verifies its signature (so two CAs that share a name are told apart).
   When the signature cannot be checked (an algorithm cryptography does not verify, or a key of
   another type than the signature's), the names link only if the authority key identifier
   matches the other's subject key identifier.
2. **The leaf.** With a key (PKCS#12), the leaf is a certificate whose public key is the key's;
   none is an error, since a TLS server could not use the pair. Without one (PEM, where the key is
   passed through unparsed, DESIGN §5; a merge; a certificate alone), the leaf is a certificate
   that issues no other certificate in the set. Ties, and several certificates for one key, are
   broken by preferring, in turn: one that issues no other, one that is not a CA, the one with
   the longest path up, then the first given (Key Vault writes the leaf first).
3. **The path.** From the leaf, each certificate is followed by its issuer, up to a self-signed
   certificate or to the last issuer present (a chain without its root ends at its top
   intermediate). Several issuers for one certificate (cross-signing): the first given wins.
   `Chain.top` is the last certificate of the path.
4. **Certificates that do not link** (an unrelated root, another leaf, a CA of the same name
   with another key, and a root given without the intermediate that links it to the leaf) are
   left off the path and returned apart in `Chain.unlinked`, in their given order. The output
   Secret drops them: `tls.crt` is what a TLS server sends, and TLS 1.2
   (RFC 5246 7.4.2) wants each certificate to certify the one before it; a certificate that
   certifies nothing on the path cannot help any client build one, and strict clients may
   refuse the whole chain because of it. Nothing is lost: Key Vault keeps every certificate that
   was merged or imported, and `order_der` sends them to Key Vault after the path for that reason.
5. **Duplicates** (the same DER twice) count once.
6. **The CA** (`Chain.ca`, what `ca.crt` holds): only ever a CA certificate, i.e. one on the path
   above the leaf (it signed the certificate below it). The top of the path when it is
   self-signed (the root); else the last issuer present (a chain without its root: its top
   intermediate); else nothing (a leaf whose issuers were not given, even with a root that does
   not link to it: rule 4), as cert-manager leaves out `ca.crt` when the issuing CA is unknown.
   One exception, also cert-manager's: a self-signed leaf alone is its own CA and is returned.

Pure and synchronous; verifying signatures costs well under a millisecond per pair, but callers
on the event loop still run it in a worker thread with the rest of the key material work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

_DER = serialization.Encoding.DER
_SPKI = serialization.PublicFormat.SubjectPublicKeyInfo


class ChainError(ValueError):
    """The certificates cannot make a chain; the message names no content."""


@dataclass(frozen=True)
class Chain:
    """`path`: the leaf, then each certificate's issuer up to the top. `unlinked`: the rest."""

    path: tuple[x509.Certificate, ...]
    unlinked: tuple[x509.Certificate, ...] = ()

    @property
    def leaf(self) -> x509.Certificate:
        return self.path[0]

    @property
    def top(self) -> x509.Certificate:
        """The last certificate of the path: the root, the top intermediate, or the leaf alone."""
        return self.path[-1]

    @property
    def ca(self) -> x509.Certificate | None:
        """What `ca.crt` holds (rule 6): the self-signed top (a root, or a self-signed leaf
        alone), else the top intermediate, else None (a leaf without its issuers)."""
        top = self.path[-1]
        if len(self.path) > 1 or _issued_by(top, top):
            return top
        return None


def order(certificates: Iterable[x509.Certificate], key: PublicKeyTypes | None = None) -> Chain:
    """Order `certificates` leaf first (rules in the module docstring); `key` is the leaf's."""
    certs = _distinct(certificates)
    if not certs:
        raise ChainError("no certificate to order")
    issuers = [[j for j, other in enumerate(certs) if _issued_by(c, other)] for c in certs]
    leaf = _leaf(certs, issuers, key)
    path = _path(leaf, issuers)
    return Chain(
        path=tuple(certs[i] for i in path),
        unlinked=tuple(c for i, c in enumerate(certs) if i not in path),
    )


def order_der(ders: Sequence[bytes]) -> list[bytes]:
    """A chain to merge, leaf first: the path, then what does not link (Key Vault keeps it).

    A certificate that cannot be read leaves the chain as given: Key Vault judges it and answers
    with its own error, which the operator reports like any refused merge.
    """
    try:
        certs = [x509.load_der_x509_certificate(der) for der in ders]
        chain = order(certs)
    except ValueError:
        return list(ders)
    return [cert.public_bytes(_DER) for cert in (*chain.path, *chain.unlinked)]


def _distinct(certificates: Iterable[x509.Certificate]) -> list[x509.Certificate]:
    seen: set[bytes] = set()
    distinct = []
    for cert in certificates:
        der = cert.public_bytes(_DER)
        if der not in seen:
            seen.add(der)
            distinct.append(cert)
    return distinct


def _issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether `issuer` signed `child` (rule 1); a self-signed certificate issued itself."""
    if child.issuer != issuer.subject:
        return False
    try:
        child.verify_directly_issued_by(issuer)
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # Another key type than the signature's (a namesake CA), or an algorithm cryptography
        # cannot check: only key identifiers that agree still link the two.
        return _key_ids_agree(child, issuer)
    return True


def _key_ids_agree(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        aki = child.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return aki.key_identifier is not None and aki.key_identifier == ski.digest


def _public_der(value: x509.Certificate | PublicKeyTypes) -> bytes | None:
    try:
        public = value.public_key() if isinstance(value, x509.Certificate) else value
        return public.public_bytes(_DER, _SPKI)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):
        return False


def _leaf(
    certs: list[x509.Certificate], issuers: list[list[int]], key: PublicKeyTypes | None
) -> int:
    """The index of the leaf (rule 2)."""
    candidates = list(range(len(certs)))
    if key is not None:
        wanted = _public_der(key)
        candidates = [i for i in candidates if _public_der(certs[i]) == wanted]
        if not candidates:
            raise ChainError("the private key matches none of the certificates")

    def issues_another(i: int) -> bool:
        return any(i in found for j, found in enumerate(issuers) if j != i)

    return min(
        candidates,
        key=lambda i: (issues_another(i), _is_ca(certs[i]), -len(_path(i, issuers)), i),
    )


def _path(start: int, issuers: list[list[int]]) -> list[int]:
    """`start`, then its issuer, and so on, to a self-signed certificate or no issuer (rule 3)."""
    path = [start]
    current = start
    while current not in issuers[current]:
        following = [i for i in issuers[current] if i not in path]
        if not following:
            break
        current = following[0]
        path.append(current)
    return path
