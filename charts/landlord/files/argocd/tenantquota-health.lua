-- Argo CD health check for TenantQuota (landlord.dev/v1alpha1), a service plan.
-- argocd-cm key: resource.customizations.health.landlord.dev_TenantQuota
--
-- A plan needs nothing provisioned, so it is Healthy unless a condition says otherwise:
-- Ready=False, or any other condition False, is Degraded ("Reason: message"). Its status
-- today is `tenants` (how many tenants use it) and `observedGeneration`, which Landlord
-- writes together with the count only, so a generation behind is not a sign of work to wait
-- for and is not looked at.

local hs = {}

local function describe(c)
  local reason = c.reason or ""
  local message = c.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  elseif reason ~= "" then
    return reason
  elseif message ~= "" then
    return message
  end
  return tostring(c.type) .. " is False"
end

local status = obj.status
if status ~= nil and status.conditions ~= nil then
  local failed = nil
  for _, c in ipairs(status.conditions) do
    if c.status == "False" then
      if c.type == "Ready" then
        failed = c
        break
      elseif failed == nil then
        failed = c
      end
    end
  end
  if failed ~= nil then
    hs.status = "Degraded"
    hs.message = describe(failed)
    return hs
  end
end

hs.status = "Healthy"
if status ~= nil and status.tenants ~= nil then
  if status.tenants == 1 then
    hs.message = "Used by 1 tenant"
  else
    hs.message = "Used by " .. tostring(status.tenants) .. " tenants"
  end
else
  hs.message = "Plan accepted"
end
return hs
