-- Argo CD health of a kvcert.io Certificate, from the conditions the operator writes
-- (Ready, Issuing, Stalled, Reconciling; one reason on all of them). Reasons are kvcert's closed
-- set (operator/kvcert/reconcile/reasons.py); a unit test checks every one is in REASONS.
local hs = {}

-- What a Ready=False reason means when neither Stalled nor Issuing says more.
local REASONS = {
  -- an operation is under way, or the operator retries by itself
  Issuing = "Progressing", Created = "Progressing", Adopted = "Progressing",
  Cancelling = "Progressing", Superseded = "Progressing", Merged = "Progressing",
  Imported = "Progressing", Renewing = "Progressing", Recovering = "Progressing",
  Recovered = "Progressing", SecretMissing = "Progressing", SecretMismatch = "Progressing",
  VaultNotReady = "Progressing", KeyVaultError = "Progressing", Throttled = "Progressing",
  ImportSecretMissing = "Progressing", PendingDeleted = "Progressing",
  CertificateNotIssued = "Progressing",
  -- done (Ready is True with these)
  Issued = "Healthy", Renewed = "Healthy", Updated = "Healthy", SecretRestored = "Healthy",
  Released = "Healthy",
  -- a manual request waits for a human to merge the signed chain
  AwaitingMerge = "Suspended",
  -- needs a human: the operator will not get there by itself
  OperationFailed = "Degraded", OperationCancelled = "Degraded", OperationDeleted = "Degraded",
  Expired = "Degraded", InvalidSpec = "Degraded", Conflict = "Degraded",
  NameSoftDeleted = "Degraded", Rejected = "Degraded", CancelRefused = "Degraded",
  MergeForbidden = "Degraded", MergeRejected = "Degraded", MergeSecretInvalid = "Degraded",
  ImportSecretInvalid = "Degraded", SecretConflict = "Degraded", KeyNotExportable = "Degraded",
  OutputRefused = "Degraded", CertificateMissing = "Degraded", UpdateRefused = "Degraded",
  NotOwned = "Degraded", AccessDenied = "Degraded", CertificateDeleted = "Degraded",
  VaultMissing = "Degraded", CertificateNotFound = "Degraded", CertificateDisabled = "Degraded",
}

local function condition(kind)
  if obj.status ~= nil and obj.status.conditions ~= nil then
    for _, c in ipairs(obj.status.conditions) do
      if c.type == kind then
        return c
      end
    end
  end
  return nil
end

local function on(c)
  return c ~= nil and c.status == "True"
end

local function said(c, fallback)
  if c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback .. " (" .. (c.reason or "no reason") .. ")"
end

local generation = obj.metadata.generation
if obj.status == nil or obj.status.observedGeneration == nil
    or (generation ~= nil and obj.status.observedGeneration ~= generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for kvcert to observe generation " .. tostring(generation)
  return hs
end

local ready = condition("Ready")
local stalled = condition("Stalled")
local issuing = condition("Issuing")
if on(ready) then
  hs.status = "Healthy"
  hs.message = said(ready, "Ready")
  return hs
end
local waiting = nil
if on(stalled) and stalled.reason == "AwaitingMerge" then
  waiting = stalled
elseif on(issuing) and issuing.reason == "AwaitingMerge" then
  waiting = issuing
end
if waiting ~= nil then
  hs.status = "Suspended"
  hs.message = said(waiting, "Waiting for a signed chain to merge")
  return hs
end
if on(stalled) then
  hs.status = "Degraded"
  hs.message = said(stalled, "Stalled")
  return hs
end
if on(issuing) then
  hs.status = "Progressing"
  hs.message = said(issuing, "Issuing")
  return hs
end
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for kvcert to set the Ready condition"
  return hs
end
hs.status = REASONS[ready.reason] or "Degraded"
if hs.status == "Healthy" then
  hs.status = "Progressing" -- Ready is not True: a done reason cannot be the whole story
end
hs.message = said(ready, "Not ready")
return hs
