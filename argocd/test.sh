#!/usr/bin/env bash
# Tests the Argo CD health checks in Argo CD's own layout: for each resource_customizations/<group>/<kind>,
# every case of health_test.yaml runs health.lua on its testdata object with Lua 5.1 and dkjson (as Argo CD
# does) and must give exactly the expected status and message.
set -euo pipefail
cd "$(dirname "$0")"
eval "$(../scripts/tools.sh)"
"$TOOLS_PY" - <<'PY'
import glob, json, os, subprocess, sys, tempfile, yaml
passed = failed = 0
for test_file in sorted(glob.glob("resource_customizations/*/*/health_test.yaml")):
    base = os.path.dirname(test_file)
    for case in yaml.safe_load(open(test_file))["tests"]:
        obj = yaml.safe_load(open(os.path.join(base, case["inputPath"])))
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(obj, f)
        out = subprocess.run(["lua5.1", "run_health.lua", os.path.join(base, "health.lua"), f.name],
                             capture_output=True, text=True)
        os.unlink(f.name)
        want = case["healthStatus"]
        got = json.loads(out.stdout) if out.returncode == 0 else {"error": out.stderr.strip()}
        if got == want:
            passed += 1
            print(f"ok: {case['inputPath']}: {want['status']}")
        else:
            failed += 1
            print(f"FAILED: {case['inputPath']}: want {want}, got {got}")
print(f"argocd health: {passed} passed, {failed} failed")
sys.exit(1 if failed or not passed else 0)
PY
