-- Argo CD action "rollback" on a ragops.io RagPipeline (annotation ragops.io/rollback):
-- back to the revision that served before the last cutover.
-- The operator removes the annotation once it has acted on it.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["ragops.io/rollback"] = ""
return obj
