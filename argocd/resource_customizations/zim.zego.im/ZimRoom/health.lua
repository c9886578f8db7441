-- Argo CD health check for zim.zego.im/ZimRoom. It reads the same conditions as kstatus (Flux, Helm 4 --wait) and
-- `kubectl wait --for=condition=Ready`:
--   Progressing  being deleted (with the operator's message while it waits for an occupied room to empty,
--                WaitingForEmptyRoom, or drains it, Draining); not handled yet or a stale observedGeneration;
--                Reconciling=True (creating, retrying a transient failure, an attribute change not applied yet)
--   Suspended    paused by the zim.zego.im/paused annotation
--   Degraded     Stalled=True: progress needs a person (InvalidSpec, ImmutableFieldChanged, CredentialsInvalid,
--                AuthFailed, QuotaExceeded, Conflict, AppIdChanged, UnverifiedStatus, ForbiddenByPolicy,
--                RoomNotFound of an observed room, attributes ZIM refuses)
--   Healthy      Ready=True for the current generation, neither Reconciling nor Stalled
-- Objects written by versions without Reconciling/Stalled fall back to the Ready reason (a terminal reason is
-- Degraded, any other Ready=False Progressing). Every condition is read before deciding; the script returns once.
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
  UnverifiedStatus = true,
  ForbiddenByPolicy = true,
  RoomNotFound = true,
}

local metadata = obj.metadata or {}
local generation = metadata.generation
local deleting = metadata.deletionTimestamp ~= nil
local paused = metadata.annotations ~= nil and metadata.annotations["zim.zego.im/paused"] == "true"

local ready = nil
local synced = nil
local reconciling = nil
local stalled = nil
local observed = nil
if obj.status ~= nil then
  observed = obj.status.observedGeneration
  if obj.status.conditions ~= nil then
    for _, c in ipairs(obj.status.conditions) do
      if c.type == "Ready" then
        ready = c
      elseif c.type == "Synced" then
        synced = c
      elseif c.type == "Reconciling" then
        reconciling = c
      elseif c.type == "Stalled" then
        stalled = c
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

local function isTrue(c)
  return c ~= nil and c.status == "True" and current(c)
end

local function describe(c)
  if c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason or ""
end

-- The condition that explains a problem: Ready when it is False, else Synced (the room exists).
local function problem()
  if ready.status ~= "True" or synced == nil then
    return describe(ready)
  end
  return describe(ready) .. " (" .. describe(synced) .. ")"
end

if deleting then
  hs.status = "Progressing"
  if ready ~= nil and (ready.reason == "Deleting" or ready.reason == "WaitingForEmptyRoom" or ready.reason == "Draining") then
    hs.message = describe(ready)
  else
    hs.message = "Deleting: waiting for zim-operator to destroy or release the room"
  end
elseif paused or (synced ~= nil and synced.reason == "ReconcilePaused") then
  hs.status = "Suspended"
  hs.message = "Reconciliation is paused by the zim.zego.im/paused annotation"
elseif ready == nil then
  hs.status = "Progressing"
elseif not current(ready) or (observed ~= nil and generation ~= nil and observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for zim-operator to observe generation " .. tostring(generation)
elseif isTrue(stalled) then
  hs.status = "Degraded"
  hs.message = problem()
elseif isTrue(reconciling) then
  hs.status = "Progressing"
  hs.message = problem()
elseif ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  if synced ~= nil and synced.status == "False" and current(synced) then
    hs.message = hs.message .. " (last reconcile: " .. describe(synced) .. ")"
  end
elseif stalled == nil and terminal[ready.reason] then
  hs.status = "Degraded"
  hs.message = describe(ready)
else
  hs.status = "Progressing"
  hs.message = describe(ready)
end

return hs
