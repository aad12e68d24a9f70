-- RagIndex fixtures: statuses as the RagIndex controller writes them (operator/src/index/status.rs:
-- phase Indexing, Ready or Degraded; conditions Ready, Indexing, Degraded with its reasons). The
-- script reads only the condition types and the phase.
local M = {}

local function cond(kind, status, reason, message)
  return { type = kind, status = status, reason = reason, message = message or "",
    observedGeneration = 2, lastTransitionTime = "2026-01-05T10:00:00Z" }
end

local function index(status, generation)
  return {
    apiVersion = "ragops.io/v1alpha1",
    kind = "RagIndex",
    metadata = { name = "handbook", namespace = "docs", generation = generation or 2 },
    spec = { vectorStore = { embedded = {} },
      embedding = { provider = "local", dimensions = 256 } },
    status = status,
  }
end

local function status(phase, conditions, extra)
  local s = { phase = phase, observedGeneration = 2, conditions = conditions }
  for k, v in pairs(extra or {}) do
    s[k] = v
  end
  return s
end

local active = { activeCollection = "handbook-1a2b", documents = 12, chunks = 340,
  lastIndexedAt = "2026-01-05T09:58:00Z", sourceDigest = "1a2b" }

local HOLDS = "collection handbook-1a2b holds 340 chunks of 12 documents"
local RUNS = "Job handbook-ingest-3c4d ingests revision 3c4d"
local FAILED = "Job handbook-ingest-3c4d failed: embedding: connection refused"

local ready = status("Ready", {
  cond("Ready", "True", "Indexed", HOLDS),
  cond("Indexing", "False", "Idle", "no ingest is running"),
  cond("Degraded", "False", "Indexed", "the latest ingest succeeded"),
}, active)

local firstIndex = status("Indexing", {
  cond("Ready", "False", "NotIndexed", "no ingest has completed yet"),
  cond("Indexing", "True", "IngestRunning", RUNS),
})

-- A re-index fills a new collection while the active one keeps serving.
local reindexing = status("Indexing", {
  cond("Ready", "True", "Indexed", HOLDS),
  cond("Indexing", "True", "IngestRunning", RUNS),
  cond("Degraded", "False", "Indexed", "the latest ingest succeeded"),
}, active)

local failed = status("Degraded", {
  cond("Ready", "True", "Indexed", HOLDS),
  cond("Indexing", "False", "IngestFailed", "embedding: connection refused"),
  cond("Degraded", "True", "IngestFailed", FAILED),
}, active)

local embedded = status("Ready", {
  cond("Ready", "True", "Embedded", "each pipeline pod ingests the sources when it starts"),
  cond("Indexing", "False", "Embedded", "nothing is ingested centrally"),
  cond("Degraded", "False", "Embedded", "the sources exist"),
}, { revision = "9f8e7d6c5b", sourceDigest = "0a1b2c3d4e5f6a7b" })

M.health = {
  { "no status at all", index(nil), "Progressing", "Waiting for the operator to report status" },
  { "observedGeneration lags metadata.generation", index(ready, 3), "Progressing",
    "Waiting for the operator to observe generation 3 (status is for 2)" },
  { "Pending: empty status", index({}), "Progressing", "Waiting for the first index" },
  { "Pending with a Ready condition",
    index(status("Pending", { cond("Ready", "False", "Pending", "waiting for sources") })),
    "Progressing", "Pending: waiting for sources" },
  { "first index in flight", index(firstIndex), "Progressing", "IngestRunning: " .. RUNS },
  { "phase Indexing without conditions", index({ phase = "Indexing", observedGeneration = 2 }),
    "Progressing", "" },
  { "re-index beside a Ready collection", index(reindexing), "Progressing",
    "IngestRunning: " .. RUNS },
  { "Ready", index(ready), "Healthy", HOLDS },
  { "embedded store", index(embedded), "Healthy",
    "each pipeline pod ingests the sources when it starts" },
  { "Degraded condition True", index(failed), "Degraded", "IngestFailed: " .. FAILED },
  { "a source the user must create", index(status("Degraded", {
      cond("Ready", "False", "NotIndexed", "no ingest has completed yet"),
      cond("Indexing", "False", "SourceNotFound", "spec.sources[0].configMap: missing"),
      cond("Degraded", "True", "SourceNotFound", "spec.sources[0].configMap: missing"),
    })), "Degraded", "SourceNotFound: spec.sources[0].configMap: missing" },
  { "phase Degraded without a Degraded condition",
    index(status("Degraded", { cond("Ready", "False", "PointCountMismatch", "340 of 341") })),
    "Degraded", "PointCountMismatch: 340 of 341" },
}

return M
