-- Argo CD health check for zim.zego.im/ZimRoom.
--   Healthy      Ready=True for the current generation
--   Degraded     Ready=False with a reason that will not heal by itself (InvalidSpec, ImmutableFieldChanged,
--                CredentialsNotFound, CredentialsInvalid, AuthFailed, QuotaExceeded, Conflict, AppIdChanged)
--   Suspended    paused by the zim.zego.im/paused annotation
--   Progressing  everything else: not yet reconciled, a stale observedGeneration, Creating, Throttled,
--                ApiUnavailable, and deletion in progress
-- Every condition is read before deciding, and the script returns once, at the end.
local hs = { status = "Progressing", message = "Waiting for zim-operator to reconcile the room" }

local terminal = {
  InvalidSpec = true,
  ImmutableFieldChanged = true,
  CredentialsNotFound = true,
  CredentialsInvalid = true,
  AuthFailed = true,
  QuotaExceeded = true,
  Conflict = true,
  AppIdChanged = true,
}

local metadata = obj.metadata or {}
local generation = metadata.generation
local deleting = metadata.deletionTimestamp ~= nil
local paused = metadata.annotations ~= nil and metadata.annotations["zim.zego.im/paused"] == "true"

local ready = nil
local synced = nil
local observed = nil
if obj.status ~= nil then
  observed = obj.status.observedGeneration
  if obj.status.conditions ~= nil then
    for _, c in ipairs(obj.status.conditions) do
      if c.type == "Ready" then
        ready = c
      elseif c.type == "Synced" then
        synced = c
      end
    end
  end
end

-- Whether a condition describes the object's current generation.
local function current(c)
  if c == nil then
    return false
  end
  if generation == nil then
    return true
  end
  local seen = c.observedGeneration or observed
  return seen ~= nil and seen >= generation
end

local function describe(c)
  if c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason or ""
end

if deleting then
  hs.status = "Progressing"
  if ready ~= nil and ready.reason == "Deleting" then
    hs.message = describe(ready)
  else
    hs.message = "Deleting: waiting for zim-operator to destroy or release the room"
  end
elseif paused or (synced ~= nil and synced.reason == "ReconcilePaused") then
  hs.status = "Suspended"
  hs.message = "Reconciliation is paused by the zim.zego.im/paused annotation"
elseif ready == nil then
  hs.status = "Progressing"
elseif not current(ready) then
  hs.status = "Progressing"
  hs.message = "Waiting for zim-operator to observe generation " .. tostring(generation)
elseif ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  if synced ~= nil and synced.status == "False" and current(synced) then
    hs.message = hs.message .. " (last reconcile: " .. describe(synced) .. ")"
  end
elseif terminal[ready.reason] then
  hs.status = "Degraded"
  hs.message = describe(ready)
else
  hs.status = "Progressing"
  hs.message = describe(ready)
end

return hs
