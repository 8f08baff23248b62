"""kvcert's commands for people: what a Certificate is doing, its CSR, merging a signed chain,
renew, retry, cancel, and what an output Secret holds.

Issue #19 §1: `kvcert status|csr|merge|renew|retry|cancel|inspect`, also installed as the
kubectl plugin `kubectl-kvcert`.

Modelled on cert-manager's cmctl: it reads the user's kubeconfig (`--kubeconfig`, else
KUBECONFIG, else ~/.kube/config), its context (`--context`) and namespace (`-n/--namespace`,
else the context's, else `default`), with the synchronous `kubernetes` client. It never imports
kopf, and never prints key material: a key is only ever compared with a certificate, locally.

Exit codes (also in `--help`):

- 0: done (for `merge`, the Certificate became Ready with the chain merged);
- 1: failed or timed out (the operator reported a refusal, Ready did not come in time, a
  Secret that holds no certificate);
- 2: usage (a bad option or argument, argparse's own code; a kubeconfig or context that cannot
  be loaded);
- 3: not found (the Certificate, its Secret, its CSR ConfigMap or a file);
- 4: refused locally (nothing to do or nothing written: no pending CSR, no spec.mergeFrom, a
  chain that does not match the CSR or is out of date, nothing in progress to cancel,
  spec.cancel still true, a source: Existing Certificate);
- 5: the API server refused or could not be reached (RBAC, network).

Errors are one line on stderr, naming the object and the fix.
"""

from __future__ import annotations

from typing import Final

OK: Final = 0
FAILED: Final = 1
USAGE: Final = 2
NOT_FOUND: Final = 3
REFUSED: Final = 4
API_ERROR: Final = 5

EXIT_CODES_HELP: Final = (
    "exit codes: 0 ok; 1 failed or timed out; 2 usage or kubeconfig; 3 not found; "
    "4 refused locally (nothing written); 5 API server refused or unreachable"
)


class CtlError(Exception):
    """One line for the user (what is wrong and the fix) and the exit code it ends with."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code
