-- Argo CD action "force-promote" on a ragops.io RagPipeline (annotation ragops.io/force-promote):
-- a promotion that also ends a running metric analysis unjudged (it reports Skipped, with a
-- Warning Event). For the person who takes the decision an analysis could not (Prometheus down,
-- no traffic yet); an analysis that already failed has failed the rollout (use retry).
-- The value is the request id, derived like promote's, so a second click on the same state
-- repeats the id and the operator ignores it.
local status = obj.status or {}
local rollout = status.rollout or {}
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
local step = ""
if rollout.canary ~= nil then
  step = "-step" .. tostring(rollout.canary.step)
end
obj.metadata.annotations["ragops.io/force-promote"] = "argocd-" .. (status.targetRevision or "")
  .. "-" .. (rollout.startedAt or "") .. step
return obj
