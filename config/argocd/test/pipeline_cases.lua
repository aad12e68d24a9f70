-- RagPipeline fixtures: statuses as the operator writes them (operator/src/pipeline/status.rs:
-- phase plus the Ready, Progressing and Degraded conditions), and what Argo CD should make of them.
local M = {}

local function cond(kind, status, reason, message)
  return {
    type = kind, status = status, reason = reason, message = message or "",
    observedGeneration = 3, lastTransitionTime = "2026-01-05T10:00:00Z",
  }
end

-- Mirrors status.rs `summary`: Ready, Progressing and Degraded with one message.
local function conditions(ready, progressing, degraded, message)
  return {
    cond("Ready", ready[1] and "True" or "False", ready[2], message),
    cond("Progressing", progressing[1] and "True" or "False", progressing[2], message),
    degraded and cond("Degraded", "True", degraded, message)
      or cond("Degraded", "False", "AsExpected", ""),
  }
end

local function pipeline(status, generation)
  return {
    apiVersion = "ragops.io/v1alpha1",
    kind = "RagPipeline",
    metadata = { name = "handbook", namespace = "docs", generation = generation or 3, uid = "u-1" },
    spec = { indexRef = { name = "handbook" }, llm = { provider = "extractive" } },
    status = status,
  }
end
M.pipeline = pipeline

local function status(phase, conds, extra)
  local s = { phase = phase, observedGeneration = 3, conditions = conds }
  for k, v in pairs(extra or {}) do
    s[k] = v
  end
  return s
end

local serving = { activeColor = "blue", activeRevision = "aaa111", readyReplicas = 2 }
-- `base` with the fields of `more` on top; NONE removes a field.
local NONE = {}
local function with(base, more)
  local out = {}
  for k, v in pairs(base) do
    out[k] = v
  end
  for k, v in pairs(more) do
    if v == NONE then
      out[k] = nil
    else
      out[k] = v
    end
  end
  return out
end
local inFlight = with(serving, { targetColor = "green", targetRevision = "bbb222" })
local afterCutover = with(serving, { previousColor = "green", previousRevision = "ccc333" })

local healthy = status("Healthy", conditions({ true, "Healthy" }, { false, "RolloutComplete" }, nil,
  "revision aaa111 is serving"), afterCutover)
table.insert(healthy.conditions, cond("MonitoringReady", "False", "NoServiceMonitorCRD", "absent"))

local starting = status("Progressing", conditions({ false, "RolloutInProgress" },
  { true, "WaitingForAvailable" }, nil, "revision bbb222 on green is starting"), inFlight)
local checking = status("Progressing", conditions({ false, "RolloutInProgress" },
  { true, "HealthChecking" }, nil, "revision bbb222 on green is being health-checked"), inFlight)
local firstRollout = status("Progressing", conditions({ false, "RolloutInProgress" },
  { true, "WaitingForAvailable" }, nil, "revision bbb222 on blue is starting"),
  { targetColor = "blue", targetRevision = "bbb222", readyReplicas = 0 })
local paused = status("Paused", conditions({ false, "AwaitingPromotion" },
  { true, "AwaitingPromotion" }, nil, "revision bbb222 on green awaits promotion: "
    .. "annotate ragops.io/promote to switch traffic"), with(afterCutover, inFlight))

-- Each Degraded reason the operator writes, with the status fields that go with it.
local function failure(reason, message)
  return { revision = "bbb222", reason = reason, message = message }
end
local deadline = "green not available within 300s"
local aborted = "rollout of revision bbb222 on green aborted by ragops.io/abort"
local degraded = {
  -- status.rs `failed`: the condition message is the failure's "reason: message".
  RolloutFailed = { "ProgressDeadlineExceeded: " .. deadline,
    with(afterCutover, { failure = failure("ProgressDeadlineExceeded", deadline) }) },
  Aborted = { "Aborted: " .. aborted, with(serving, { failure = failure("Aborted", aborted) }) },
  RolledBack = { "revision aaa111 was rolled back to ccc333; change the spec or annotate "
      .. "ragops.io/retry to roll it out again",
    with(afterCutover, { rollback = { from = "aaa111", to = "ccc333" } }) },
  NoReadyReplicas = { "the active colour has no ready pods",
    with(afterCutover, { readyReplicas = 0 }) },
  -- User errors: whatever ran keeps running; here one strikes in the middle of a rollout.
  IndexNotFound = { "RagIndex docs/handbook not found", inFlight },
  SecretNotFound = { "Secret docs/openai (spec.llm.apiKeySecretRef) not found", serving },
  SecretKeyMissing = { "Secret docs/openai has no key api-key (spec.llm.apiKeySecretRef)",
    serving },
  SourceNotFound = { "ConfigMap docs/handbook-docs (RagIndex source) not found", serving },
}
M.degradedReasons = {}
for reason in pairs(degraded) do
  table.insert(M.degradedReasons, reason)
end
table.sort(M.degradedReasons)

local function degradedStatus(reason)
  local d = degraded[reason]
  return status("Degraded", conditions({ false, reason }, { false, reason }, reason, d[1]), d[2])
end

M.health = {
  { "no status at all", pipeline(nil), "Progressing", "Waiting for the operator to report status" },
  { "observedGeneration lags metadata.generation", pipeline(healthy, 4), "Progressing",
    "Waiting for the operator to observe generation 4 (status is for 3)" },
  { "observedGeneration lag, numbers as strings",
    pipeline(with(healthy, { observedGeneration = "3" }), "10"), "Progressing",
    "Waiting for the operator to observe generation 10 (status is for 3)" },
  { "status without observedGeneration", pipeline(with(healthy, { observedGeneration = NONE })),
    "Healthy", "revision aaa111 is serving" },
  { "Pending: empty status", pipeline({}), "Progressing", "Waiting for the first rollout" },
  { "Pending: phase only", pipeline({ phase = "Pending", observedGeneration = 3 }), "Progressing",
    "Waiting for the first rollout" },
  { "first rollout starting", pipeline(firstRollout), "Progressing",
    "WaitingForAvailable: revision bbb222 on blue is starting" },
  { "rollout: new colour starting", pipeline(starting), "Progressing",
    "WaitingForAvailable: revision bbb222 on green is starting" },
  { "rollout: health checks", pipeline(checking), "Progressing",
    "HealthChecking: revision bbb222 on green is being health-checked" },
  { "Progressing condition True without a phase",
    pipeline(with(checking, { phase = NONE })), "Progressing",
    "HealthChecking: revision bbb222 on green is being health-checked" },
  { "Paused awaiting promotion", pipeline(paused), "Suspended",
    "AwaitingPromotion: revision bbb222 on green awaits promotion: annotate ragops.io/promote "
      .. "to switch traffic" },
  { "Healthy", pipeline(healthy), "Healthy", "revision aaa111 is serving" },
  { "Healthy phase while post-promotion analysis runs",
    pipeline(with(healthy, { analysis = { stage = "postPromotion", revision = "aaa111",
      color = "blue", phase = "Running", startedAt = "2026-01-05T10:00:00Z",
      metrics = { { name = "errors", successful = 2, inconclusive = 1 }, { name = "p99" } } } })),
    "Progressing", "Analysis postPromotion of revision aaa111 running (3 measurements so far)" },
  { "Healthy after the analysis passed",
    pipeline(with(healthy, { analysis = { stage = "postPromotion", revision = "aaa111",
      color = "blue", phase = "Successful", startedAt = "2026-01-05T10:00:00Z" } })),
    "Healthy", "revision aaa111 is serving" },
  { "phase Degraded without conditions", pipeline({ phase = "Degraded", observedGeneration = 3 }),
    "Degraded", "" },
}
for _, reason in ipairs(M.degradedReasons) do
  table.insert(M.health, { "Degraded " .. reason, pipeline(degradedStatus(reason)), "Degraded",
    reason .. ": " .. degraded[reason][1] })
end

-- Discovery: the actions offered in each state (all others are listed, disabled).
M.actions = { "promote", "retry", "abort", "rollback", "force-promote" }
M.discovery = {
  { "no status", pipeline(nil), {} },
  { "first rollout in flight", pipeline(firstRollout), { "abort", "force-promote" } },
  { "rollout in flight", pipeline(with(starting, afterCutover)), { "abort", "force-promote" } },
  { "Paused", pipeline(paused), { "promote", "abort", "force-promote" } },
  { "Healthy after a cutover", pipeline(healthy), { "rollback" } },
  { "Healthy, first revision", pipeline(status("Healthy", healthy.conditions, serving)), {} },
  { "Degraded RolloutFailed", pipeline(degradedStatus("RolloutFailed")), { "retry", "rollback" } },
  { "Degraded Aborted", pipeline(degradedStatus("Aborted")), { "retry" } },
  { "Degraded RolledBack", pipeline(degradedStatus("RolledBack")), { "retry" } },
  { "gated rollback in flight", pipeline(with(starting, { targetColor = "green",
    targetRevision = "ccc333", rollback = { from = "aaa111", to = "ccc333" } })),
    { "abort", "force-promote" } },
  { "Degraded NoReadyReplicas", pipeline(degradedStatus("NoReadyReplicas")), { "rollback" } },
  { "Degraded IndexNotFound mid-rollout", pipeline(degradedStatus("IndexNotFound")), { "abort" } },
  { "Degraded SecretNotFound", pipeline(degradedStatus("SecretNotFound")), {} },
}

-- The request id each action sets on `M.requested` (see the scripts for why each is stable).
M.requested = pipeline(with(paused, { lastCutoverTime = "2026-01-05T09:00:00Z",
  rollout = { startedAt = "2026-01-05T10:00:00Z", healthSuccesses = 2, verified = true } }))
M.requested.metadata.resourceVersion = "4711"
M.requestIds = {
  promote = "argocd-bbb222-2026-01-05T10:00:00Z",
  ["force-promote"] = "argocd-bbb222-2026-01-05T10:00:00Z",
  abort = "argocd-bbb222-2026-01-05T10:00:00Z",
  rollback = "argocd-aaa111-2026-01-05T09:00:00Z",
  retry = "argocd-4711",
}

return M
