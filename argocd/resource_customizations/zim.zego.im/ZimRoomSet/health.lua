-- Argo CD health check for zim.zego.im/ZimRoomSet. It reads the same conditions as kstatus (Flux, Helm 4 --wait) and
-- `kubectl wait --for=condition=Ready`, which the set controller writes from its children:
--   Progressing  being deleted (Kubernetes deletes the children, each by its own rules: an occupied room waits);
--                not handled yet or a stale observedGeneration; Reconciling=True (ChildrenNotReady: children
--                being created or not Ready yet; ScalingDown: children the set no longer declares still going)
--   Degraded     Stalled=True: progress needs a person (ChildrenStalled: some children are Stalled, their names in
--                the message; InvalidRooms: the room IDs cannot be computed, and nothing was changed)
--   Healthy      Ready=True (AllReady) for the current generation, neither Reconciling nor Stalled
-- Every condition is read before deciding; the script returns once.
local hs = { status = "Progressing", message = "Waiting for zim-operator to reconcile the set" }

local metadata = obj.metadata or {}
local generation = metadata.generation
local deleting = metadata.deletionTimestamp ~= nil

local ready = nil
local reconciling = nil
local stalled = nil
local observed = nil
if obj.status ~= nil then
  observed = obj.status.observedGeneration
  if obj.status.conditions ~= nil then
    for _, c in ipairs(obj.status.conditions) do
      if c.type == "Ready" then
        ready = c
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
    return (c.reason or "") .. ": " .. c.message
  end
  return c.reason or ""
end

if deleting then
  hs.status = "Progressing"
  hs.message = "Deleting: Kubernetes deletes the set's children, each by its own rules (an occupied room waits until it is empty)"
elseif ready == nil then
  hs.status = "Progressing"
elseif not current(ready) or (observed ~= nil and generation ~= nil and observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for zim-operator to observe generation " .. tostring(generation)
elseif isTrue(stalled) then
  hs.status = "Degraded"
  hs.message = describe(stalled)
elseif isTrue(reconciling) then
  hs.status = "Progressing"
  hs.message = describe(reconciling)
elseif ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
else
  hs.status = "Progressing"
  hs.message = describe(ready)
end

return hs
