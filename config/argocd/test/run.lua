-- Runs every Argo CD script under config/argocd/ragops.io against the fixtures, the way Argo CD's
-- Lua VM would, and checks that argocd-cm.yaml matches the scripts.
--   lua5.1 config/argocd/test/run.lua config/argocd              the tests
--   lua5.1 config/argocd/test/run.lua config/argocd --write-cm   regenerate argocd-cm.yaml
local root = assert(arg[1], "usage: run.lua <config/argocd> [--write-cm]")
local sandbox = dofile(root .. "/test/sandbox.lua")
local cm = dofile(root .. "/test/cm.lua")
local CM_FILE = root .. "/argocd-cm.yaml"

if arg[2] == "--write-cm" then
  local f = assert(io.open(CM_FILE, "wb"))
  f:write(cm.render(root))
  f:close()
  print("wrote " .. CM_FILE)
  os.exit(0)
end

local pipelineCases = dofile(root .. "/test/pipeline_cases.lua")
local indexCases = dofile(root .. "/test/index_cases.lua")
local PIPELINE = root .. "/ragops.io/RagPipeline/"
local INDEX = root .. "/ragops.io/RagIndex/"

local passed, failures = 0, {}
local function case(name, fn)
  local ok, err = pcall(fn)
  if ok then
    passed = passed + 1
  else
    table.insert(failures, name .. ": " .. tostring(err))
  end
end

local function show(v)
  if type(v) ~= "table" then
    return type(v) == "string" and ("%q"):format(v) or tostring(v)
  end
  local keys = {}
  for k in pairs(v) do
    table.insert(keys, k)
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do
    table.insert(parts, tostring(k) .. "=" .. show(v[k]))
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local function equal(want, got, what)
  if show(want) ~= show(got) then
    error(what .. ": want " .. show(want) .. ", got " .. show(got), 0)
  end
end

-- The sandbox must refuse what Argo CD's VM refuses, or the cases below prove nothing.
local function rejects(source)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(source)
  f:close()
  local ok, err = pcall(sandbox.run, path, {})
  os.remove(path)
  if ok then
    error("accepted: " .. source, 0)
  end
  return err
end
case("sandbox refuses the string library", function()
  rejects('return { status = string.upper("healthy") }')
end)
case("sandbox refuses math", function() rejects("return { n = math.floor(1.5) }") end)
case("sandbox refuses require", function() rejects('local json = require("json") return {}') end)
case("sandbox refuses a non-table result", function() rejects('return "Healthy"') end)
case("sandbox refuses what JSON cannot hold", function() rejects("return { f = print }") end)

local VALID = { Healthy = true, Progressing = true, Degraded = true, Suspended = true,
  Missing = true, Unknown = true }
local function healthCases(kind, script, cases)
  for _, c in ipairs(cases) do
    local name, obj, status, message = c[1], c[2], c[3], c[4]
    case(kind .. " health: " .. name, function()
      local got = sandbox.run(script, obj)
      assert(VALID[got.status], "not an Argo CD health status: " .. tostring(got.status))
      equal({ status = status, message = message }, got, "health")
    end)
  end
end
healthCases("RagPipeline", PIPELINE .. "health.lua", pipelineCases.health)
healthCases("RagIndex", INDEX .. "health.lua", indexCases.health)

case("RagPipeline health: a case per phase", function()
  local seen = {}
  for _, c in ipairs(pipelineCases.health) do
    seen[(c[2].status or {}).phase or "(none)"] = true
  end
  for _, phase in ipairs({ "Pending", "Progressing", "Paused", "Healthy", "Degraded", "(none)" }) do
    assert(seen[phase], "no case with phase " .. phase)
  end
end)

case("RagPipeline actions: argocd-cm installs exactly the discovered ones", function()
  equal(pipelineCases.actions, cm.ACTIONS[1][2], "actions")
end)
for _, c in ipairs(pipelineCases.discovery) do
  local name, obj, enabled = c[1], c[2], c[3]
  case("RagPipeline discovery: " .. name, function()
    local got = sandbox.run(PIPELINE .. "actions/discovery.lua", obj)
    local want = {}
    for _, action in ipairs(pipelineCases.actions) do
      want[action] = { disabled = true }
    end
    for _, action in ipairs(enabled) do
      want[action] = { disabled = false }
    end
    equal(want, got, "actions")
  end)
end

local annotated = sandbox.deepcopy(pipelineCases.requested)
annotated.metadata.annotations = { team = "docs", ["ragops.io/promote"] = "" }
for _, action in ipairs(pipelineCases.actions) do
  local key = "ragops.io/" .. action
  for _, obj in ipairs({ pipelineCases.requested, annotated }) do
    local label = obj.metadata.annotations and "with annotations" or "without annotations"
    case("RagPipeline action " .. action .. ": " .. label, function()
      local got = sandbox.run(PIPELINE .. "actions/" .. action .. "/action.lua", obj)
      local want = sandbox.deepcopy(obj)
      want.metadata.annotations = want.metadata.annotations or {}
      want.metadata.annotations[key] = pipelineCases.requestIds[action]
      equal(want, got, "object")
      -- Clicked twice on the same state: the same id, which the operator ignores.
      local again = sandbox.run(PIPELINE .. "actions/" .. action .. "/action.lua", got)
      equal(want, again, "object after a second click")
    end)
  end
  case("RagPipeline action " .. action .. ": without a status", function()
    local got = sandbox.run(PIPELINE .. "actions/" .. action .. "/action.lua",
      pipelineCases.pipeline(nil))
    assert(type(got.metadata.annotations[key]) == "string", "an id is set")
  end)
end

case("RagPipeline action promote: each pause of a canary gets its own id", function()
  local ids = {}
  for _, step in ipairs({ 1, 3 }) do
    local obj = sandbox.deepcopy(pipelineCases.requested)
    obj.status.rollout.canary = { step = step, weight = 25, stepStartedAt = "2026-01-05T10:01:00Z" }
    local got = sandbox.run(PIPELINE .. "actions/promote/action.lua", obj)
    ids[step] = got.metadata.annotations["ragops.io/promote"]
  end
  equal("argocd-bbb222-2026-01-05T10:00:00Z-step1", ids[1], "the first pause's id")
  equal("argocd-bbb222-2026-01-05T10:00:00Z-step3", ids[3], "the second pause's id")
end)

case("argocd-cm.yaml is generated from the scripts (make argocd-cm)", function()
  local f = io.open(CM_FILE, "rb")
  local current = f and f:read("*a") or ""
  if f then
    f:close()
  end
  if current ~= cm.render(root) then
    error(CM_FILE .. " is stale: run `make argocd-cm`", 0)
  end
end)

for _, f in ipairs(failures) do
  io.stderr:write("FAIL " .. f .. "\n")
end
print(("argocd-test: %d passed, %d failed"):format(passed, #failures))
os.exit(#failures == 0 and 0 or 1)
