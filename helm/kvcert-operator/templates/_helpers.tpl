{{/*
The chart name, truncated to 63 characters (a label value's limit).
*/}}
{{- define "kvcert.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: <release>-<chart>, or the release name when it already
contains the chart name; truncated to 63 characters.
*/}}
{{- define "kvcert.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The name of cluster-scoped objects (ClusterRole, ClusterRoleBinding) and of the Role in namespace
default: <release namespace>-<full name>, so that two releases of the same name in different
namespaces do not collide.
*/}}
{{- define "kvcert.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "kvcert.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The chart label value: name-version.
*/}}
{{- define "kvcert.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The labels every object carries.
*/}}
{{- define "kvcert.labels" -}}
helm.sh/chart: {{ include "kvcert.chart" . }}
{{ include "kvcert.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kvcert
{{- end }}

{{/*
The labels the Deployment selects its pods by (immutable once installed).
*/}}
{{- define "kvcert.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kvcert.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{/*
The ServiceAccount the operator runs as.
*/}}
{{- define "kvcert.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kvcert.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: repository@digest when a digest is given (it wins over the tag),
otherwise repository:tag with the tag defaulting to the chart's appVersion.
*/}}
{{- define "kvcert.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
RBAC rules for the namespaced resources the operator reconciles. Each rule is one set of calls
the operator makes; nothing else is granted, and there are no wildcards.
*/}}
{{- define "kvcert.rules.namespaced" -}}
# Certificates: kopf lists and watches them; the operator reads one before reconciling it and
# patches metadata.finalizers (kvcert.io/cleanup, held only for deletionPolicy Delete or
# DeletePending).
- apiGroups: ["kvcert.io"]
  resources: ["certificates"]
  verbs: ["get", "list", "watch", "patch"]
# Certificate status: conditions, the Key Vault operation and the issued certificate.
- apiGroups: ["kvcert.io"]
  resources: ["certificates/status"]
  verbs: ["patch"]
# KeyVaults: watched, and read when a Certificate refers to one.
- apiGroups: ["kvcert.io"]
  resources: ["keyvaults"]
  verbs: ["get", "list", "watch"]
# KeyVault status: the Ready condition (Reachable, AccessDenied, Unreachable, ...).
- apiGroups: ["kvcert.io"]
  resources: ["keyvaults/status"]
  verbs: ["patch"]
# CertificateIssuers: kopf lists and watches them; the operator reads one for a retry after a
# failure and patches metadata.finalizers (kvcert.io/cleanup, held only for deletionPolicy Delete).
- apiGroups: ["kvcert.io"]
  resources: ["certificateissuers"]
  verbs: ["get", "list", "watch", "patch"]
# CertificateIssuer status: the ownership record (managed), the Ready and Stalled conditions.
- apiGroups: ["kvcert.io"]
  resources: ["certificateissuers/status"]
  verbs: ["patch"]
# Secrets: read the credential (token, client secret) Secrets of KeyVaults, the manual issuer's
# signed chain (mergeFrom), PFX imports (importFrom) and the current output Secret; create and
# update the output kubernetes.io/tls Secret. List and watch, always with a server-side label
# selector (RBAC cannot express one): the output Secrets
# (app.kubernetes.io/managed-by=kvcert,kvcert.io/certificate), to write a deleted or edited one
# again at once, and the source Secrets users label kvcert.io/source=true (metadata only), to
# merge or import as soon as they change.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "update"]
# ConfigMaps: create and update the CSR ConfigMap (status.operation.csrRef) of a manual issuer.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["create", "update"]
# Events: the operator's Events on Certificates and KeyVaults (the same reasons as conditions).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{/*
RBAC rules for the cluster-scoped ClusterKeyVaults and ClusterCertificateIssuers, watched
cluster-wide in every mode.
*/}}
{{- define "kvcert.rules.cluster" -}}
# ClusterKeyVaults: watched cluster-wide, and read when a Certificate refers to one.
- apiGroups: ["kvcert.io"]
  resources: ["clusterkeyvaults"]
  verbs: ["get", "list", "watch"]
# ClusterKeyVault status: the Ready condition.
- apiGroups: ["kvcert.io"]
  resources: ["clusterkeyvaults/status"]
  verbs: ["patch"]
# ClusterCertificateIssuers: watched cluster-wide, read for a retry after a failure, and their
# metadata.finalizers patched (kvcert.io/cleanup, deletionPolicy Delete only).
- apiGroups: ["kvcert.io"]
  resources: ["clustercertificateissuers"]
  verbs: ["get", "list", "watch", "patch"]
# ClusterCertificateIssuer status: the ownership record and the Ready and Stalled conditions.
- apiGroups: ["kvcert.io"]
  resources: ["clustercertificateissuers/status"]
  verbs: ["patch"]
{{- end }}
