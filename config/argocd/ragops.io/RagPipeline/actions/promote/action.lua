-- Argo CD action "promote" on a ragops.io RagPipeline (annotation ragops.io/promote):
-- switches traffic to the verified colour of a Paused rollout.
-- The operator removes the annotation once it has acted on it.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["ragops.io/promote"] = ""
return obj
