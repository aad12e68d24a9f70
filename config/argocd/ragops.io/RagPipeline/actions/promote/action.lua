-- Argo CD action "promote" on a ragops.io RagPipeline (annotation ragops.io/promote):
-- switches traffic to the verified colour of a Paused rollout.
-- The value is the request id: the rollout being promoted (its revision and start), so a second
-- click on the same rollout repeats the id and the operator, which records the ids it acted on in
-- status.handledRequests, ignores it. The operator removes the annotation afterwards.
local status = obj.status or {}
local rollout = status.rollout or {}
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["ragops.io/promote"] = "argocd-" .. (status.targetRevision or "")
  .. "-" .. (rollout.startedAt or "")
return obj
