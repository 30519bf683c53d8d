-- Argo CD health check for Tenant (landlord.dev/v1alpha1).
-- argocd-cm key: resource.customizations.health.landlord.dev_Tenant
--
-- Argo CD runs this with gopher-lua (Lua 5.1): the Tenant is the global `obj`, and the
-- script returns {status = ..., message = ...}. In order:
--   no status yet, or status.observedGeneration (or the Ready condition's) behind
--     metadata.generation                                   -> Progressing
--   phase Failed, or Ready=False with a failure reason      -> Degraded, "Reason: message"
--   phase Suspended, Hibernated or Archived                 -> Suspended
--   phase Pending, Provisioning, Archiving, Restoring, Migrating (with the percentage),
--     Terminating                                           -> Progressing
--   phase Active and Ready=True                             -> Healthy
--   phase Active, Ready not reported yet                    -> Progressing
--   any other phase                                         -> Unknown
-- A Ready=False whose reason is a phase name (a life-state change under way) is not a
-- failure; every other reason is.

local hs = {}

local function condition(status, type_)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local function describe(c)
  local reason = c.reason or ""
  local message = c.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  elseif reason ~= "" then
    return reason
  end
  return message
end

local phases = {
  Pending = "progressing", Provisioning = "progressing", Archiving = "progressing",
  Restoring = "progressing", Migrating = "progressing", Terminating = "progressing",
  Suspended = "suspended", Hibernated = "suspended", Archived = "suspended",
  Active = "active", Failed = "failed",
}

local status = obj.status
local generation = obj.metadata and obj.metadata.generation
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for Landlord to report the tenant's status"
  return hs
end

local ready = condition(status, "Ready")
if generation ~= nil then
  local observed = status.observedGeneration
  if observed ~= nil and ready ~= nil and ready.observedGeneration ~= nil and
      ready.observedGeneration < observed then
    observed = ready.observedGeneration
  end
  if observed == nil or observed < generation then
    hs.status = "Progressing"
    hs.message = "Waiting for Landlord to observe generation " .. tostring(generation) ..
      " (status is of generation " .. tostring(observed or "none") .. ")"
    return hs
  end
end

local phase = status.phase
local kind = phases[phase]

if phase == "Failed" then
  hs.status = "Degraded"
  if ready ~= nil and ready.status == "False" and describe(ready) ~= "" then
    hs.message = describe(ready)
  else
    hs.message = "Tenant is Failed"
    if status.conditions ~= nil then
      for _, c in ipairs(status.conditions) do
        if c.status == "False" and describe(c) ~= "" then
          hs.message = describe(c)
          break
        end
      end
    end
  end
  return hs
end

if ready ~= nil and ready.status == "False" and phases[ready.reason or ""] == nil then
  hs.status = "Degraded"
  hs.message = describe(ready)
  if hs.message == "" then
    hs.message = "Ready is False"
  end
  return hs
end

if kind == "suspended" then
  hs.status = "Suspended"
  hs.message = "Tenant is " .. phase
  return hs
end

if kind == "progressing" then
  hs.status = "Progressing"
  hs.message = "Tenant is " .. phase
  local m = status.migration
  if phase == "Migrating" and m ~= nil and m.percentage ~= nil then
    hs.message = hs.message .. ": " .. tostring(m.percentage) .. "%"
    if m.completedItems ~= nil and m.totalItems ~= nil then
      hs.message = hs.message .. " (" .. tostring(m.completedItems) .. " of " ..
        tostring(m.totalItems) .. " objects)"
    end
  end
  return hs
end

if kind == "active" then
  if ready ~= nil and ready.status == "True" then
    hs.status = "Healthy"
    hs.message = ready.message
    if hs.message == nil or hs.message == "" then
      hs.message = "Tenant is Active"
    end
  else
    hs.status = "Progressing"
    if ready ~= nil and describe(ready) ~= "" then
      hs.message = describe(ready)
    else
      hs.message = "Waiting for the Ready condition"
    end
  end
  return hs
end

hs.status = "Unknown"
hs.message = "Unknown phase " .. tostring(phase)
return hs
