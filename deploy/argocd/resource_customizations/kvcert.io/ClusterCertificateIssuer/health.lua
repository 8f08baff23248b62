-- Argo CD health of a kvcert.io ClusterCertificateIssuer: its Ready condition, written by the operator
-- (operator/kvcert/runtime/issuers.py) when the issuer is first seen, changed or its password
-- Secret rotated; failures it retries by itself are Progressing, those that need a human
-- (Stalled True) Degraded.
local hs = {}

-- What a Ready reason means (operator/kvcert/reconcile/issuer_reasons.py).
local REASONS = {
  Configured = "Healthy",
  Adopted = "Healthy",
  Deleted = "Healthy",
  VaultNotReady = "Progressing",
  PasswordNotFound = "Progressing",
  KeyVaultError = "Progressing",
  InvalidSpec = "Degraded",
  NotOwned = "Degraded",
  Rejected = "Degraded",
}

local generation = obj.metadata.generation
if obj.status == nil or obj.status.observedGeneration == nil
    or (generation ~= nil and obj.status.observedGeneration ~= generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for kvcert to observe generation " .. tostring(generation)
  return hs
end

local ready = nil
for _, c in ipairs(obj.status.conditions or {}) do
  if c.type == "Ready" then
    ready = c
  end
end
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for kvcert to write the issuer to Key Vault"
  return hs
end
if ready.message ~= nil and ready.message ~= "" then
  hs.message = ready.message
else
  hs.message = "Ready " .. ready.status .. " (" .. (ready.reason or "no reason") .. ")"
end
if ready.status == "True" then
  hs.status = "Healthy"
else
  hs.status = REASONS[ready.reason] or "Degraded"
  if hs.status == "Healthy" then
    hs.status = "Progressing"
  end
end
return hs
