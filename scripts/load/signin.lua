-- wrk script: POST /auth/v1/signin/custom with a different pre-issued ticket each request.
-- Usage: wrk -s scripts/load/signin.lua URL -- BODIES_FILE CLIENT_ID
-- BODIES_FILE holds one JSON body per line: {"provider_id":"custom","ticket":"…"}.
local bodies = {}
local next_index = 1
local path = "/auth/v1/signin/custom"
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  for line in io.lines(args[1]) do
    bodies[#bodies + 1] = line
  end
  if #bodies == 0 then
    error("no bodies in " .. tostring(args[1]))
  end
  path = path .. "?client_id=" .. args[2]
  -- Each wrk thread starts at its own place in the pool.
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 100000)
  next_index = math.random(#bodies)
end

function request()
  next_index = next_index % #bodies + 1
  return wrk.format("POST", path, headers, bodies[next_index])
end
