-- Argo CD action "promote" on a ragops.io RagPipeline (annotation ragops.io/promote):
-- switches traffic to the verified colour of a Paused rollout, or ends a canary's pause.
-- The value is the request id: the rollout being promoted (its revision and start, and a canary's
-- step), so a second click on the same pause repeats the id and the operator, which records the
-- ids it acted on in status.handledRequests, ignores it, while the next pause of the same canary
-- gets a new one. The operator removes the annotation afterwards.
local status = obj.status or {}
local rollout = status.rollout or {}
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
local step = ""
if rollout.canary ~= nil then
  step = "-step" .. tostring(rollout.canary.step)
end
obj.metadata.annotations["ragops.io/promote"] = "argocd-" .. (status.targetRevision or "")
  .. "-" .. (rollout.startedAt or "") .. step
return obj
