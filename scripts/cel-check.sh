#!/usr/bin/env bash
# Checks the committed CRD (crds/zimroom.yaml) and its CEL rules on the current Kubernetes — kube-apiserver 1.37 with
# etcd, built from their Go modules and started by scripts/kube-env.sh — with kubectl 1.35:
#   - kubectl apply --server-side of the CRD draws no warning, and a control copy with format uint32 does draw one
#     (so the check can see warnings at all);
#   - roomName is limited in bytes: 40 CJK characters (120 bytes) are refused on create, 21 (63 bytes) accepted;
#   - before any room exists (no status.applied, no pending creation) destroyDelayTime and roomName can be corrected;
#   - once status.applied exists (or a creation is pending), changing destroyDelayTime, roomName or roomId, or
#     adding a roomName, is refused with the rule's message, while other edits still pass.
# Ends with the line "cel checks: N passed, M failed"; exits non-zero on any failure or when the server cannot start.
set -euo pipefail
cd "$(dirname "$0")/.."

eval "$(scripts/tools.sh)"
dir=$(mktemp -d)
cleanup() { scripts/kube-env.sh stop "$dir" || true; rm -rf "$dir"; }
trap cleanup EXIT
ZIM_KUBE_VERSION=current scripts/kube-env.sh start "$dir" $$ >/dev/null
echo "cel checks on kube-apiserver $(cat "$dir/version")"
export KUBECONFIG="$dir/kubeconfig" KUBECTL

"$TOOLS_PY" - "$dir" <<'PY'
import json, os, subprocess, sys, yaml

work = sys.argv[1]
kubectl = os.environ["KUBECTL"]
passed = failed = 0

def k(*args, stdin=None):
    return subprocess.run([kubectl, *args], input=stdin, capture_output=True, text=True, timeout=60)

def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok: {name}")
    else:
        failed += 1
        print(f"FAILED: {name}: {detail}")

def refused(out, message):
    return out.returncode != 0 and message in out.stderr

def show(out):
    return f"exit {out.returncode}, stdout {out.stdout.strip()!r}, stderr {out.stderr.strip()!r}"

# The CRD: no warnings on a current server; a control with the old uint32 format draws them.
crd_text = open("crds/zimroom.yaml").read()
out = k("apply", "--server-side", "--field-manager=cel-check", "-f", "crds/zimroom.yaml")
check("kubectl apply --server-side of crds/zimroom.yaml: accepted without warnings",
      out.returncode == 0 and "warning" not in out.stderr.lower(), show(out))
control = yaml.safe_load(crd_text)
control["metadata"]["name"] = "zimroomcontrols.zim.zego.im"
control["spec"]["names"] = {"kind": "ZimRoomControl", "plural": "zimroomcontrols", "singular": "zimroomcontrol"}
control_text = yaml.safe_dump(control).replace("format: int64", "format: uint32")
out = k("apply", "--server-side", "--field-manager=cel-check", "-f", "-", stdin=control_text)
check("control: the same CRD with format uint32 draws 'unrecognized format' warnings",
      out.returncode == 0 and 'unrecognized format "uint32"' in out.stderr, show(out))
out = k("wait", "--for=condition=Established", "--timeout=30s", "crd/zimrooms.zim.zego.im")
check("the CRD is established", out.returncode == 0, show(out))

def room(name, spec):
    return json.dumps({"apiVersion": "zim.zego.im/v1alpha1", "kind": "ZimRoom",
                       "metadata": {"name": name, "namespace": "default"}, "spec": spec})

def create(name, spec):
    return k("create", "-f", "-", stdin=room(name, spec))

def patch(name, body, *extra):
    return k("patch", "zimroom", name, "-n", "default", "--type=merge", "-p", json.dumps(body), *extra)

def set_status(name, status):
    return patch(name, {"status": status}, "--subresource=status")

BYTES = "roomName must be at most 64 bytes of UTF-8"
NAME_FIXED = "spec.roomName cannot be set or changed once the room exists"
DELAY_FIXED = "spec.destroyDelayTime cannot change once the room exists"
ID_FIXED = "spec.roomId cannot change once the room exists"

# Byte lengths.
out = create("long-name", {"roomName": "房" * 40})
check("create: roomName of 40 CJK characters (120 bytes) refused with the byte-length message",
      refused(out, BYTES), show(out))
out = create("cjk-name", {"roomName": "房" * 21})
check("create: roomName of 21 CJK characters (63 bytes) accepted", out.returncode == 0, show(out))

# Before any room exists: corrections pass.
out = create("lobby", {"roomId": "lobby", "destroyDelayTime": 100})
check("create: lobby with destroyDelayTime 100", out.returncode == 0, show(out))
out = patch("lobby", {"spec": {"destroyDelayTime": 200}})
check("before the room exists: correcting destroyDelayTime accepted", out.returncode == 0, show(out))
out = patch("lobby", {"spec": {"roomName": "Lobby"}})
check("before the room exists: adding roomName accepted", out.returncode == 0, show(out))
out = patch("lobby", {"spec": {"roomName": "The lobby"}})
check("before the room exists: changing roomName accepted", out.returncode == 0, show(out))

# Once the room exists (status.applied): immutable, with the rule's message; other edits pass.
out = set_status("lobby", {"applied": {"roomId": "lobby", "roomName": "The lobby", "destroyDelayTime": 200}})
check("status.applied recorded through the status subresource", out.returncode == 0, show(out))
out = patch("lobby", {"spec": {"destroyDelayTime": 300}})
check("room exists: changing destroyDelayTime refused with the rule's message", refused(out, DELAY_FIXED), show(out))
out = patch("lobby", {"spec": {"roomName": "Another name"}})
check("room exists: changing roomName refused with the rule's message", refused(out, NAME_FIXED), show(out))
out = patch("lobby", {"spec": {"roomId": "lobby-2"}})
check("room exists: changing roomId refused with the rule's message", refused(out, ID_FIXED), show(out))
out = patch("lobby", {"spec": {"roomName": None}})
check("room exists: removing roomName accepted", out.returncode == 0, show(out))
out = patch("lobby", {"metadata": {"labels": {"team": "chat"}}, "spec": {"destroyDelayTime": 200}})
check("room exists: an unrelated edit accepted", out.returncode == 0, show(out))

out = create("hall", {"destroyDelayTime": 60})
check("create: hall without roomName", out.returncode == 0, show(out))
out = set_status("hall", {"applied": {"roomId": "hall", "destroyDelayTime": 60}})
check("hall: status.applied recorded", out.returncode == 0, show(out))
out = patch("hall", {"spec": {"roomName": "Hall"}})
check("room exists: adding roomName refused with the rule's message", refused(out, NAME_FIXED), show(out))

# A pending creation (outcome unknown) counts as an existing room.
out = create("pending", {"destroyDelayTime": 60})
check("create: pending", out.returncode == 0, show(out))
out = set_status("pending", {"pendingCreation": True})
check("pending: status.pendingCreation recorded", out.returncode == 0, show(out))
out = patch("pending", {"spec": {"destroyDelayTime": 90}})
check("creation pending: changing destroyDelayTime refused", refused(out, DELAY_FIXED), show(out))

print(f"cel checks: {passed} passed, {failed} failed")
sys.exit(1 if failed or not passed else 0)
PY
