-- Argo CD actions of a ragops.io RagPipeline: each one sets a ragops.io/<action> annotation to a
-- request id, which the operator acts on once and removes. An action is offered only where the
-- operator would act on it: no rollback while a rollback is in force or in flight (it would bring
-- back the revision the first one set aside).
local status = obj.status or {}
local inFlight = status.targetRevision ~= nil and status.targetRevision ~= ""
local hasPrevious = status.previousRevision ~= nil and status.previousRevision ~= ""
-- What a retry brings back: a failed or aborted revision, or the one a rollback set aside.
local retryable = status.phase == "Degraded" and (status.failure ~= nil or status.rollback ~= nil)

local actions = {}
actions["promote"] = { disabled = status.phase ~= "Paused" }
actions["retry"] = { disabled = not retryable }
actions["abort"] = { disabled = not inFlight }
-- Past a running analysis too; not into a rollout that cannot be served (Degraded).
actions["force-promote"] = { disabled = not inFlight or status.phase == "Degraded" }
local rollingBack = status.rollback ~= nil
actions["rollback"] = { disabled = inFlight or not hasPrevious or rollingBack }
return actions
