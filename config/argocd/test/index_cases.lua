-- RagIndex fixtures: statuses as DESIGN.md describes them (phase Pending, Indexing, Ready or
-- Degraded; conditions Ready, Indexing, Degraded). No controller writes them yet, so the reasons
-- here are examples; the script reads only the condition types and phase.
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

local ready = status("Ready", {
  cond("Ready", "True", "Indexed", "collection handbook-1a2b: 12 documents, 340 chunks"),
  cond("Indexing", "False", "Idle", ""),
  cond("Degraded", "False", "AsExpected", ""),
}, active)

local firstIndex = status("Indexing", {
  cond("Ready", "False", "Indexing", "no collection yet"),
  cond("Indexing", "True", "IngestRunning", "building handbook-3c4d"),
  cond("Degraded", "False", "AsExpected", ""),
})

-- A re-index fills a new collection while the active one keeps serving.
local reindexing = status("Ready", {
  cond("Ready", "True", "Indexed", "collection handbook-1a2b: 12 documents, 340 chunks"),
  cond("Indexing", "True", "IngestRunning", "building handbook-3c4d"),
  cond("Degraded", "False", "AsExpected", ""),
}, active)

local failed = status("Degraded", {
  cond("Ready", "True", "Indexed", "collection handbook-1a2b: 12 documents, 340 chunks"),
  cond("Indexing", "False", "IngestFailed", "job handbook-ingest-3c4d failed"),
  cond("Degraded", "True", "IngestFailed", "job handbook-ingest-3c4d failed"),
}, active)

M.health = {
  { "no status at all", index(nil), "Progressing", "Waiting for the operator to report status" },
  { "observedGeneration lags metadata.generation", index(ready, 3), "Progressing",
    "Waiting for the operator to observe generation 3 (status is for 2)" },
  { "Pending: empty status", index({}), "Progressing", "Waiting for the first index" },
  { "Pending with a Ready condition",
    index(status("Pending", { cond("Ready", "False", "Pending", "waiting for sources") })),
    "Progressing", "Pending: waiting for sources" },
  { "first index in flight", index(firstIndex), "Progressing",
    "IngestRunning: building handbook-3c4d" },
  { "phase Indexing without conditions", index({ phase = "Indexing", observedGeneration = 2 }),
    "Progressing", "" },
  { "re-index beside a Ready collection", index(reindexing), "Progressing",
    "IngestRunning: building handbook-3c4d" },
  { "Ready", index(ready), "Healthy", "collection handbook-1a2b: 12 documents, 340 chunks" },
  { "Degraded condition True", index(failed), "Degraded",
    "IngestFailed: job handbook-ingest-3c4d failed" },
  { "phase Degraded without a Degraded condition",
    index(status("Degraded", { cond("Ready", "False", "PointCountMismatch", "340 of 341") })),
    "Degraded", "PointCountMismatch: 340 of 341" },
}

return M
