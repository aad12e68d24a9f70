-- Argo CD health of a ragops.io RagIndex (argocd-cm key
-- resource.customizations.health.ragops.io_RagIndex). Argo CD runs it with the base and table
-- libraries only: no string, math or require.
local function condition(status, kind)
  for _, c in ipairs(status.conditions or {}) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

-- "reason: message", or whichever of the two is there.
local function describe(c)
  if c == nil then
    return ""
  end
  local reason, message = c.reason or "", c.message or ""
  if reason == "" or message == "" then
    return reason .. message
  end
  return reason .. ": " .. message
end

local status = obj.status
if status == nil then
  return { status = "Progressing", message = "Waiting for the operator to report status" }
end

-- A status written for an older spec says nothing about the current one.
local generation = tonumber(obj.metadata.generation)
local observed = tonumber(status.observedGeneration)
if generation ~= nil and observed ~= nil and observed < generation then
  return {
    status = "Progressing",
    message = "Waiting for the operator to observe generation " .. generation
      .. " (status is for " .. observed .. ")",
  }
end

local ready = condition(status, "Ready")
local degraded = condition(status, "Degraded")
local indexing = condition(status, "Indexing")

if isTrue(degraded) then
  return { status = "Degraded", message = describe(degraded) }
end
if status.phase == "Degraded" then
  return { status = "Degraded", message = describe(ready) }
end
-- A re-index runs beside the active collection (Ready stays True): it is still work in flight.
if status.phase == "Indexing" or isTrue(indexing) then
  return { status = "Progressing", message = describe(indexing) }
end
if isTrue(ready) then
  return { status = "Healthy", message = (ready.message or "") }
end
if ready ~= nil then
  return { status = "Progressing", message = describe(ready) }
end
return { status = "Progressing", message = "Waiting for the first index" }
