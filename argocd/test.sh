#!/usr/bin/env bash
# Tests the Argo CD health checks in Argo CD's own layout: for each resource_customizations/<group>/<kind>, every
# case of health_test.yaml runs health.lua on its testdata object with two runners, and each must give exactly the
# expected status and message:
#   lua5.1      Lua 5.1 with dkjson, JSON null as nil (run_health.lua)
#   gopher-lua  gopher-lua, Argo CD's interpreter, with Argo CD's object conversion and the restricted libraries an
#               argocd-cm health script gets (gopher-lua/health.go, built by scripts/gopher-lua-build.sh)
# Then a few checks of the gopher-lua runner itself (what Argo CD does with a script that uses a library it does not
# open, returns an empty table, an unknown status, or runs too long), so a runner that stops behaving like Argo CD
# fails here too. The closing line, `argocd checks: N passed, M failed` (scripts/lib/check.sh), counts every check
# of both runners.
set -euo pipefail
cd "$(dirname "$0")"
source ../scripts/lib/check.sh
check_begin argocd
eval "$(../scripts/tools.sh)"
GOPHER_HEALTH="$(../scripts/gopher-lua-build.sh)"
export GOPHER_HEALTH
# The Python program prints one ok:/FAILED: line per check; `counted` adds them up.
counted "$TOOLS_PY" - <<'PY'
import glob, json, os, subprocess, sys, tempfile, yaml

runners = {
    "lua5.1": lambda script, obj: ["lua5.1", "run_health.lua", script, obj],
    "gopher-lua": lambda script, obj: [os.environ["GOPHER_HEALTH"], script, obj],
}
passed = failed = 0

def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        return {"error": out.stderr.strip()}
    try:
        return json.loads(out.stdout)
    except ValueError:
        return {"error": "not JSON: " + out.stdout}

def check(name, ok, detail):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok: {name}")
    else:
        failed += 1
        print(f"FAILED: {name}: {detail}")

tmp = tempfile.mkdtemp()
for test_file in sorted(glob.glob("resource_customizations/*/*/health_test.yaml")):
    base = os.path.dirname(test_file)
    script = os.path.join(base, "health.lua")
    for case in yaml.safe_load(open(test_file))["tests"]:
        obj = os.path.join(tmp, "object.json")
        with open(obj, "w") as f:
            json.dump(yaml.safe_load(open(os.path.join(base, case["inputPath"]))), f)
        want = case["healthStatus"]
        for name, cmd in runners.items():
            got = run(cmd(script, obj))
            kind = os.path.relpath(base, "resource_customizations")
            check(f"[{name}] {kind} {case['inputPath']}: {want['status']}", got == want, f"want {want}, got {got}")

# The gopher-lua runner against Argo CD's own behaviour (util/lua/lua.go), on a small object.
obj = os.path.join(tmp, "object.json")
with open(obj, "w") as f:
    json.dump({"metadata": {"generation": 2, "annotations": None}, "status": {"list": [], "map": {}}}, f)
def gopher(body, *flags):
    path = os.path.join(tmp, "probe.lua")
    with open(path, "w") as f:
        f.write(body)
    return run([os.environ["GOPHER_HEALTH"], *flags, path, obj])
probes = [
    ("numbers, null and empty containers as Argo CD converts them",
     'return {status = "Healthy", message = tostring(obj.metadata.generation) .. " " .. type(obj.metadata.annotations)'
     ' .. " " .. type(obj.status.list) .. " " .. type(obj.status.map)}', [],
     lambda r: r == {"status": "Healthy", "message": "2 nil table table"}),
    ("no string library for an argocd-cm script",
     'return {status = string.format("%s", "Healthy")}', [], lambda r: "error" in r),
    ("the string library with useOpenLibs",
     'return {status = string.format("%s", "Healthy")}', ["-open-libs"], lambda r: r == {"status": "Healthy"}),
    ("os holds only time and date",
     'local os = require("os"); return {status = "Healthy", message = type(os.time) .. " " .. type(os.date)'
     ' .. " " .. type(os.exit) .. " " .. type(io)}', [],
     lambda r: r == {"status": "Healthy", "message": "function function nil nil"}),
    ("an unknown status reads Unknown",
     'return {status = "Fine"}', [],
     lambda r: r == {"status": "Unknown", "message": "Lua returned an invalid health status"}),
    ("an empty table is an error", "return {}", [], lambda r: "error" in r),
    ("a non-table result is an error", 'return "Healthy"', [], lambda r: "error" in r),
    ("a script is stopped after one second", "while true do end", [],
     lambda r: "deadline" in r.get("error", "")),
]
for name, body, flags, ok in probes:
    got = gopher(body, *flags)
    check(f"[gopher-lua runner] {name}", ok(got), f"got {got}")

sys.exit(1 if failed or not passed else 0)
PY
finish
