-- Argo CD health check for argoproj.io/Application, for an app of apps: Argo CD 1.8 and later give a child
-- Application no health of its own, so sync waves between Applications (the credentials, then the operator, then
-- the rooms) would not wait for the earlier wave to be Healthy. This hands up the health Argo CD computed for the
-- child Application itself; without one yet it is Progressing.
local health = nil
if obj.status ~= nil then
  health = obj.status.health
end
if health == nil or health.status == nil or health.status == "" then
  return { status = "Progressing", message = "Waiting for the Application's health" }
end
if health.message == nil or health.message == "" then
  return { status = health.status }
end
return { status = health.status, message = health.message }
