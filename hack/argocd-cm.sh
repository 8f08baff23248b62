#!/usr/bin/env bash
# Writes deploy/argocd/argocd-cm-health.yaml from the health.lua files (the same bytes as
# tests/support/gitops.py render_argocd_cm, which tests/unit/gitops checks).
# usage: hack/argocd-cm.sh
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
.venv/bin/python -c 'from tests.support.gitops import ARGOCD_CM, render_argocd_cm
ARGOCD_CM.write_text(render_argocd_cm())'
echo deploy/argocd/argocd-cm-health.yaml
