-- Argo CD health check for ragops.io/RagPipeline (and RagIndex): maps the operator's kstatus
-- conditions and phase onto Argo CD health. Install it under
--   resource.customizations.health.ragops.io_RagPipeline
-- (and ..._RagIndex) in the argocd-cm ConfigMap, as a multi-line string.
local hs = { status = "Progressing", message = "Waiting for the operator" }
if obj.status == nil then
  return hs
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration ~= nil
    and obj.status.observedGeneration < obj.metadata.generation then
  hs.message = "Waiting for the operator to observe the latest spec"
  return hs
end
local message = ""
if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Ready" and c.message ~= nil then
      message = c.message
    end
    if c.type == "Degraded" and c.status == "True" then
      return { status = "Degraded", message = c.reason .. ": " .. (c.message or "") }
    end
  end
end
local phase = obj.status.phase
if phase == "Healthy" or phase == "Ready" then
  return { status = "Healthy", message = message }
elseif phase == "Paused" then
  return { status = "Suspended", message = message }
elseif phase == "Degraded" then
  return { status = "Degraded", message = message }
end
return { status = "Progressing", message = message }
