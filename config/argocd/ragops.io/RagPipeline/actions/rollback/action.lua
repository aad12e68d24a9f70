-- Argo CD action "rollback" on a ragops.io RagPipeline (annotation ragops.io/rollback):
-- back to the revision that served before the last cutover.
-- The value is the request id: the cutover being undone (active revision and its time), so a
-- second click on the same state repeats the id and the operator, which records the ids it acted
-- on in status.handledRequests, ignores it. The operator removes the annotation afterwards.
local status = obj.status or {}
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["ragops.io/rollback"] = "argocd-" .. (status.activeRevision or "")
  .. "-" .. (status.lastCutoverTime or "")
return obj
