-- wrk script: sends GET /v1/verify with the bearer tokens of the file in
-- $TOKENS, one per line, in turn.
local tokens = {}
local i = 0

init = function(args)
  local f = assert(io.open(os.getenv("TOKENS"), "r"))
  for line in f:lines() do
    tokens[#tokens + 1] = "Bearer " .. line
  end
  f:close()
end

request = function()
  i = i + 1
  if i > #tokens then i = 1 end
  return wrk.format("GET", "/v1/verify", { ["Authorization"] = tokens[i] })
end
