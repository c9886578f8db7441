-- Runs an Argo CD health script the way Argo CD does (Lua 5.1, the object as the global `obj`, JSON null as nil
-- through dkjson) and prints the result as JSON. Usage: lua5.1 run_health.lua HEALTH.lua OBJECT.json
local json = require("dkjson")
local script, input = arg[1], arg[2]
local f = assert(io.open(input, "r"))
local text = f:read("*a")
f:close()
local decoded, _, err = json.decode(text, 1, nil)
if err then
  error("cannot decode " .. input .. ": " .. err)
end
obj = decoded
local chunk = assert(loadfile(script))
local hs = chunk()
io.write(json.encode({ status = hs.status, message = hs.message }))
