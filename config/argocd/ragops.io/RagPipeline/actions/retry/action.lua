-- Argo CD action "retry" on a ragops.io RagPipeline (annotation ragops.io/retry):
-- rolls a failed, aborted or rolled-back revision out again.
-- The operator removes the annotation once it has acted on it.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["ragops.io/retry"] = ""
return obj
