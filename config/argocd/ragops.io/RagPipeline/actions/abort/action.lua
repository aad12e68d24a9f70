-- Argo CD action "abort" on a ragops.io RagPipeline (annotation ragops.io/abort):
-- stops the rollout in flight; the old colour keeps all traffic.
-- The operator removes the annotation once it has acted on it.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["ragops.io/abort"] = ""
return obj
