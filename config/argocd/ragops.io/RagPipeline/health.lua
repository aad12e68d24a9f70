-- Argo CD health of a ragops.io RagPipeline (argocd-cm key
-- resource.customizations.health.ragops.io_RagPipeline). Argo CD runs it with the base and table
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
local progressing = condition(status, "Progressing")

-- A user error in the middle of a rollout is a failure too, so Degraded comes first.
if isTrue(degraded) then
  return { status = "Degraded", message = describe(degraded) }
end
if status.phase == "Degraded" then
  return { status = "Degraded", message = describe(ready) }
end
-- Paused keeps Progressing True (AwaitingPromotion): check it before the rollout in flight.
if status.phase == "Paused" then
  return { status = "Suspended", message = describe(progressing) }
end
-- A metric analysis still measuring keeps the rollout in flight, also after the switch (its
-- failure rolls traffic back): Healthy waits for its verdict.
local analysis = status.analysis
if analysis ~= nil and analysis.phase == "Running" then
  local measured = 0
  for _, m in ipairs(analysis.metrics or {}) do
    measured = measured + (m.successful or 0) + (m.failed or 0) + (m.inconclusive or 0)
  end
  return {
    status = "Progressing",
    message = "Analysis " .. (analysis.stage or "") .. " of revision " .. (analysis.revision or "")
      .. " running (" .. measured .. " measurements so far)",
  }
end
if status.phase == "Progressing" or isTrue(progressing) then
  return { status = "Progressing", message = describe(progressing) }
end
if isTrue(ready) then
  return { status = "Healthy", message = (ready.message or "") }
end
if ready ~= nil then
  return { status = "Progressing", message = describe(ready) }
end
return { status = "Progressing", message = "Waiting for the first rollout" }
