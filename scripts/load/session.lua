-- wrk script: sign-ins and refresh chains. A sign-in's refresh token is refreshed (it rotates),
-- and each answer's new refresh token is refreshed again with probability CHAIN/(CHAIN+1),
-- so a session sees CHAIN refreshes on average; when no token is waiting, the next request
-- is a sign-in with the next pre-issued ticket.
-- Usage: wrk -s scripts/load/session.lua URL -- BODIES_FILE CLIENT_ID [CHAIN]
-- BODIES_FILE holds one JSON body per line: {"provider_id":"custom","ticket":"…"}.
local bodies = {}
local next_index = 1
local tokens = {}
local keep = 0.8
local signin_path = "/auth/v1/signin/custom"
local token_path = "/auth/v1/token"
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  for line in io.lines(args[1]) do
    bodies[#bodies + 1] = line
  end
  if #bodies == 0 then
    error("no bodies in " .. tostring(args[1]))
  end
  signin_path = signin_path .. "?client_id=" .. args[2]
  token_path = token_path .. "?client_id=" .. args[2]
  local chain = tonumber(args[3] or "4")
  keep = chain / (chain + 1)
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 100000)
  next_index = math.random(#bodies)
end

function request()
  local token = table.remove(tokens)
  if token then
    return wrk.format("POST", token_path, headers,
      '{"grant_type":"refresh_token","refresh_token":"' .. token .. '"}')
  end
  next_index = next_index % #bodies + 1
  return wrk.format("POST", signin_path, headers, bodies[next_index])
end

function response(status, headers, body)
  if status == 200 and math.random() < keep then
    local token = body:match('"refresh_token":"([^"]+)"')
    if token then
      tokens[#tokens + 1] = token
    end
  end
end
