-- Argo CD action "retry" on a ragops.io RagPipeline (annotation ragops.io/retry):
-- rolls a failed, aborted or rolled-back revision out again.
-- The value is the request id: the version of the pipeline the click acted on. A second click
-- sees a newer version (the first retry was recorded) and finds nothing left to retry, which the
-- operator treats as done. The operator removes the annotation afterwards.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["ragops.io/retry"] = "argocd-" .. (obj.metadata.resourceVersion or "")
return obj
