-- Argo CD action "abort" on a ragops.io RagPipeline (annotation ragops.io/abort):
-- stops the rollout in flight; the old colour keeps all traffic.
-- The value is the request id: the rollout being aborted (its revision and start), so a second
-- click on the same rollout repeats the id and the operator, which records the ids it acted on in
-- status.handledRequests, ignores it. The operator removes the annotation afterwards.
local status = obj.status or {}
local rollout = status.rollout or {}
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["ragops.io/abort"] = "argocd-" .. (status.targetRevision or "")
  .. "-" .. (rollout.startedAt or "")
return obj
