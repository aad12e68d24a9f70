-- Runs a script the way Argo CD's Lua VM does (util/lua/lua.go): a fresh environment holding the
-- base and table libraries and a safe os (no string, math, io or require of other modules), the
-- resource as the global `obj`, and the chunk's return value as the result. Reading any other
-- global fails, so a script that would break in Argo CD fails here too.
local M = {}

local BASE = {
  "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "print", "rawequal",
  "rawget", "rawset", "select", "setmetatable", "tonumber", "tostring", "type", "unpack", "xpcall",
}

function M.deepcopy(v)
  if type(v) ~= "table" then
    return v
  end
  local out = {}
  for k, x in pairs(v) do
    out[k] = M.deepcopy(x)
  end
  return out
end

local function environment(obj)
  local env = { _VERSION = _VERSION, obj = obj, table = M.deepcopy(table) }
  for _, name in ipairs(BASE) do
    env[name] = _G[name]
  end
  env.os = { time = os.time, date = os.date, clock = os.clock, difftime = os.difftime }
  return setmetatable(env, {
    __index = function(_, name)
      error("global '" .. tostring(name) .. "' does not exist in Argo CD's Lua sandbox", 2)
    end,
  })
end

-- Argo CD encodes the result as JSON: only strings, numbers, booleans and tables of them, each
-- table either an array or string-keyed.
local function check_json(v, path)
  local t = type(v)
  if t == "string" or t == "number" or t == "boolean" then
    return
  end
  if t ~= "table" then
    error(path .. " is a " .. t .. ", which JSON cannot hold")
  end
  local strings, numbers = 0, 0
  for k, x in pairs(v) do
    if type(k) == "string" then
      strings = strings + 1
    elseif type(k) == "number" then
      numbers = numbers + 1
    else
      error(path .. " has a " .. type(k) .. " key")
    end
    check_json(x, path .. "." .. tostring(k))
  end
  if strings > 0 and numbers > 0 then
    error(path .. " mixes array and object keys")
  end
end

-- The script's result for `obj` (a deep copy: fixtures stay as written); errors as Argo CD would.
function M.run(path, obj)
  local chunk, err = loadfile(path)
  if chunk == nil then
    error(err)
  end
  setfenv(chunk, environment(M.deepcopy(obj)))
  local ok, result = pcall(chunk)
  if not ok then
    error(tostring(result), 0)
  end
  if type(result) ~= "table" then
    error(path .. ": expect table output from Lua script, not " .. type(result))
  end
  check_json(result, "result")
  return result
end

return M
