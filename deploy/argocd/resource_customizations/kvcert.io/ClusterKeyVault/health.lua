-- Argo CD health of a kvcert.io ClusterKeyVault: its Ready condition, written when the operator probes
-- the vault (operator/kvcert/runtime/probe.py: one read when the object is first seen or its
-- spec changes, never on a timer, so a failed probe stays until the spec or credential changes).
local hs = {}

-- What a Ready=False reason means; probe.py is the only writer.
local REASONS = {
  Reachable = "Healthy",
  Unreachable = "Degraded",
  KeyVaultError = "Degraded",
  AccessDenied = "Degraded",
  InvalidConfiguration = "Degraded",
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
  hs.message = "Waiting for kvcert to probe the vault"
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
    hs.status = "Degraded"
  end
end
return hs
