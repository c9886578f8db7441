#!/usr/bin/env bash
# Runs the README's install, upgrade and uninstall commands as written (run by scripts/test.sh).
#
# The commands are not copied here: every fenced block in README.md that follows a line
# `<!-- readme-check: NAME -->` is read from the README and run with bash (-e, pipefail), from the checkout's
# root, with `helm` and `kubectl` first on PATH. Only these placeholders are substituted (and a block that still
# holds a `<…>` placeholder fails):
#   <your registry>                        registry.invalid (nothing pulls the image: see below)
#   <tag>, <new tag>                       0.1.0, 0.1.1
#   <server secret from the ZEGO console>  the simulator's secret (AppId 123456789 is used as written)
#
# For Helm 3 and for Helm 4, each on a fresh kube-apiserver + etcd (scripts/kube-env.sh) of the oldest Kubernetes
# the README promises (1.20) and of the current one (1.37), with the ZIM simulator (`zim-operator simulate`) as the
# ZIM endpoint:
#   install (namespaces, credentials, helm install, a room Ready; a ZimRoomSet Ready too, applied by this script),
#   the install notes pasted into a shell, the upgrade with a changed CRD, uninstall keeping the CRDs, the rooms
#   and the set, reinstall, removing the CRDs with the operator running (no room destroyed, the set's neither),
#   the CRDs with kubectl (per cluster age) handed over to the chart, rooms destroyed on purpose, and the CRDs
#   deleted after the operator is gone.
# No kubelet runs, so the chart's Deployment never starts a pod: the operator runs as a local process with the
# environment of the chart's Deployment and the token of the chart's ServiceAccount (so the chart's RBAC is what
# it gets), and stops when `helm uninstall` would have removed it.
#
# Prints `ok:`/`FAILED:` per check and ends with `readme checks: N passed, M failed`; exits 1 if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
pass=setup
work="$(mktemp -d)"
op_pid=""
sim_pid=""
kube=""
cleanup() {
  [[ -n "$op_pid" ]] && kill "$op_pid" 2>/dev/null
  [[ -n "$sim_pid" ]] && kill "$sim_pid" 2>/dev/null
  [[ -n "$kube" ]] && scripts/kube-env.sh stop "$kube" >/dev/null 2>&1
  rm -rf "$work"
}
source scripts/lib/check.sh # ok, bad, check, fatal, finish; each line prefixed with [$pass]
check_begin readme pass
at_exit cleanup
eval "$(scripts/tools.sh)"

app=123456789
secret=$(openssl rand -hex 16)
declare -A placeholder=(
  ["<your registry>"]=registry.invalid
  ["<tag>"]=0.1.0
  ["<new tag>"]=0.1.1
  ["<server secret from the ZEGO console>"]="$secret"
)
ns=zim-system
release=zim-operator
crd=zimrooms.zim.zego.im
set_crd=zimroomsets.zim.zego.im

# --- The README's blocks ------------------------------------------------------------------------------------------
# readme_block NAME: the block's text, placeholders substituted; fails if the marker or its block is missing.
readme_block() {
  local subs=() key
  for key in "${!placeholder[@]}"; do subs+=("$key" "${placeholder[$key]}"); done
  python3 - "$root/README.md" "$1" "${subs[@]}" <<'PY'
import re, sys
path, name, subs = sys.argv[1], sys.argv[2], sys.argv[3:]
lines = open(path, encoding="utf-8").read().split("\n")
marker = f"<!-- readme-check: {name} -->"
hits = [i for i, l in enumerate(lines) if l.strip() == marker]
if len(hits) != 1:
    sys.exit(f"README.md has {len(hits)} markers {marker!r}, expected exactly one")
i = hits[0] + 1
while i < len(lines) and not lines[i].strip():
    i += 1
fence = lines[i] if i < len(lines) else ""
if not fence.strip().startswith("```"):
    sys.exit(f"the marker {marker!r} is not followed by a fenced block")
pad = len(fence) - len(fence.lstrip())
body = []
for l in lines[i + 1:]:
    if l.strip() == "```":
        break
    body.append(l[pad:] if l[:pad].strip() == "" else l)
else:
    sys.exit(f"the block after {marker!r} is not closed")
text = "\n".join(body) + "\n"
for key, value in zip(subs[::2], subs[1::2]):
    text = text.replace(key, value)
left = re.findall(r"<[A-Za-z][^<>\n]*>", text)
if left:
    sys.exit(f"block {name!r} still holds placeholders {left}: add them to readme-check.sh's list")
sys.stdout.write(text)
PY
}

# run_block NAME [DIR] [SECONDS]: runs the README's block NAME with bash in DIR (default: the checkout), within
# SECONDS (default 300); its output goes to $work/NAME.log and, when it fails, to stderr (unless $expect_failure).
# Returns the block's exit status.
expect_failure=""
run_block() {
  local name="$1" dir="${2:-$root}" limit="${3:-300}"
  readme_block "$name" >"$work/$name.sh" || return 1
  local rc=0
  (cd "$dir" && timeout "$limit" bash -euo pipefail "$work/$name.sh") >"$work/$name.log" 2>&1 || rc=$?
  if ((rc != 0)) && [[ -z "$expect_failure" ]]; then
    echo "--- README block $name exited $rc; its commands and output:" >&2
    sed 's/^/  | /' "$work/$name.sh" >&2
    tail -n 20 "$work/$name.log" | sed 's/^/  > /' >&2
  fi
  return $rc
}

# --- Helpers ------------------------------------------------------------------------------------------------------
k() { "$KUBECTL" "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# until SECONDS command...: polls the command every 0.2 s until it succeeds, or fails after SECONDS.
until_ok() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}
sim() { curl -sf "http://127.0.0.1:$sim_port/_sim/$1"; }
sim_room() { sim "rooms/$app/$1" >/dev/null; }
no_sim_room() { ! sim_room "$1"; }
destroys() { sim "log?since=0" | python3 -c 'import json,sys; print(sum(e["action"] == "DestroyRoom" for e in json.load(sys.stdin)))'; }
crd_exists() { k get crd "$crd" >/dev/null 2>&1 && k get crd "$set_crd" >/dev/null 2>&1; }
crd_gone() { ! k get crd "$crd" >/dev/null 2>&1 && ! k get crd "$set_crd" >/dev/null 2>&1; }
ready() { # namespace name: the ZimRoom's Ready condition is True
  [[ $(k -n "$1" get zimroom "$2" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}
crd_annotation() { k get crd "${2:-$crd}" -o jsonpath="{.metadata.annotations['$1']}" 2>/dev/null; }
no_cel() { ! k get crd "$crd" "$set_crd" -o json | grep -q 'x-kubernetes-validations\|selectableFields'; }
has_vap() { k get validatingadmissionpolicy -l "app.kubernetes.io/instance=$release" -o name | grep -q zimrooms; }
has_cel() {
  k get crd "$crd" -o json | grep -q x-kubernetes-validations && k get crd "$crd" -o json | grep -q selectableFields \
    && k get crd "$set_crd" -o json | grep -q x-kubernetes-validations
}
# A ZimRoomSet of two rooms (set-1, set-2) in chat, applied by this script (the README has no set yet).
apply_set() {
  k apply -f - <<'YAML'
apiVersion: zim.zego.im/v1alpha1
kind: ZimRoomSet
metadata: {name: lobbies, namespace: chat}
spec:
  rooms: {ids: [set-1, set-2]}
  template:
    spec: {destroyDelayTime: 600, attributes: [{key: topic, value: lobby}]}
YAML
}
set_ready() { # the set is Ready (AllReady) with both children Ready
  [[ $(k -n chat get zimroomset lobbies -o jsonpath='{.status.conditions[?(@.type=="Ready")].reason}/{.status.ready}' 2>/dev/null) == AllReady/2 ]]
}
set_rooms() { sim_room set-1 && sim_room set-2; }
set_converged() { until_ok 60 set_ready && set_rooms; }
set_kept() { k -n chat get zimroomset lobbies >/dev/null && set_rooms; }
deployment() { # the release's Deployment as JSON
  k -n "$ns" get deployment -l "app.kubernetes.io/instance=$release" -o json | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
assert len(items) == 1, f"{len(items)} Deployments of the release"
json.dump(items[0], sys.stdout)'
}

# start_operator: the operator binary as a local process with the environment of the release's Deployment
# (ZIM_ENDPOINT and ZIM_ADMIN_ADDR replaced) and the token of its ServiceAccount.
start_operator() {
  deployment >"$work/deploy.json" || return 1
  local sa token server
  sa=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["spec"]["template"]["spec"]["serviceAccountName"])' "$work/deploy.json")
  token=$(k create token "$sa" -n "$ns" --duration=1h) || return 1
  server=$(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  rm -f "$work/sa.kubeconfig"
  {
    k config --kubeconfig="$work/sa.kubeconfig" set-cluster c --server="$server" \
      --certificate-authority="$kube/ca.crt" --embed-certs=true
    k config --kubeconfig="$work/sa.kubeconfig" set-credentials sa --token="$token"
    k config --kubeconfig="$work/sa.kubeconfig" set-context c --cluster=c --user=sa
    k config --kubeconfig="$work/sa.kubeconfig" use-context c
  } >/dev/null || return 1
  local env=()
  mapfile -d '' env < <(python3 -c '
import json, sys
for e in json.load(open(sys.argv[1]))["spec"]["template"]["spec"]["containers"][0]["env"]:
    if "value" in e:
        sys.stdout.write(e["name"] + "=" + e["value"] + chr(0))' "$work/deploy.json")
  admin_port=$(free_port)
  env -i PATH="$PATH" HOME="$HOME" "${env[@]}" POD_NAME=zim-operator-local POD_NAMESPACE="$ns" \
    ZIM_ENDPOINT="http://127.0.0.1:$sim_port" ZIM_ADMIN_ADDR="127.0.0.1:$admin_port" \
    "$bin" run --kubeconfig "$work/sa.kubeconfig" >>"$work/operator-$pass.log" 2>&1 &
  op_pid=$!
  until_ok 30 curl -sf "http://127.0.0.1:$admin_port/readyz" || { tail -n 20 "$work/operator-$pass.log" >&2; return 1; }
}
stop_operator() {
  [[ -n "$op_pid" ]] || return 0
  kill -TERM "$op_pid" 2>/dev/null || true
  wait "$op_pid" 2>/dev/null || true
  op_pid=""
}

# The next version of the checkout for the upgrade: the chart and crds/ with a changed CRD (a field description)
# made by the project's own generator, chart version 0.1.1.
make_next_version() {
  local next="$work/next"
  rm -rf "$next"
  mkdir -p "$next/crds" "$next/charts"
  cp -r "$root/charts/zim-operator" "$next/charts/"
  cp "$root/crds/zimroomset.yaml" "$next/crds/"
  "$TOOLS_PY" - "$root/crds/zimroom.yaml" "$next/crds/zimroom.yaml" <<'PY'
import sys, yaml
crd = yaml.safe_load(open(sys.argv[1]))
field = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["deletionPolicy"]
field["description"] += " (changed by the upgrade check)"
out = open(sys.argv[2], "w")
out.write("# Generated by `zim-operator crd`; do not edit.\n")
yaml.safe_dump(crd, out, sort_keys=False, width=1 << 20, allow_unicode=True)
PY
  python3 "$root/scripts/chart-crd.py" ZimRoom <"$next/crds/zimroom.yaml" >"$next/charts/zim-operator/templates/crd.yaml"
  sed -i 's/^version: .*/version: 0.1.1/; s/^appVersion: .*/appVersion: "0.1.1"/' "$next/charts/zim-operator/Chart.yaml"
}

# --- Static: what the chart renders for old and current clusters ---------------------------------------------------
bin="${CARGO_TARGET_DIR:-$root/target}/debug/zim-operator"
[[ -x $bin ]] || cargo build --quiet --locked
for kind in zimroom zimroomset; do
  "$TOOLS_PY" - "$root/crds/$kind.yaml" "$work/$kind-full.json" "$work/$kind-cel.json" "$work/$kind-nocel.json" <<'PY'
import json, sys, yaml
crd = yaml.safe_load(open(sys.argv[1]))
json.dump(crd, open(sys.argv[2], "w"))
def strip(v, keys):
    if isinstance(v, dict):
        return {k: strip(x, keys) for k, x in v.items() if k not in keys}
    return [strip(x, keys) for x in v] if isinstance(v, list) else v
json.dump(strip(crd, {"selectableFields"}), open(sys.argv[3], "w"))
json.dump(strip(crd, {"selectableFields", "x-kubernetes-validations"}), open(sys.argv[4], "w"))
PY
done
same_crd() { # rendered.yaml variant(full|cel|nocel): the chart renders both CRDs, each the expected variant of its
  # file under crds/, with the chart's metadata
  "$TOOLS_PY" - "$1" "$work" "$2" <<'PY'
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") == "CustomResourceDefinition"]
names = sorted(d["metadata"]["name"] for d in docs)
if names != ["zimrooms.zim.zego.im", "zimroomsets.zim.zego.im"]:
    sys.exit(f"CRDs rendered: {names}")
for got in docs:
    meta = got.pop("metadata")
    kind = meta["name"].split(".")[0][:-1]
    want = json.load(open(f"{sys.argv[2]}/{kind}-{sys.argv[3]}.json"))
    want.pop("metadata")
    if got != want:
        sys.exit(f"the rendered CRD {meta['name']} differs from crds/{kind}.yaml")
    if meta.get("annotations", {}).get("helm.sh/resource-policy") != "keep":
        sys.exit(f"unexpected metadata {meta}")
PY
}
for helm in "$HELM3" "$HELM4"; do
  v=$("$helm" version --template '{{.Version}}')
  "$helm" template "$release" charts/zim-operator -n "$ns" --kube-version 1.20.0 >"$work/t-1.20.yaml"
  "$helm" template "$release" charts/zim-operator -n "$ns" --kube-version 1.25.0 >"$work/t-1.25.yaml"
  "$helm" template "$release" charts/zim-operator -n "$ns" --kube-version 1.31.0 >"$work/t-1.31.yaml"
  "$helm" template "$release" charts/zim-operator -n "$ns" >"$work/t-default.yaml"
  "$helm" template "$release" charts/zim-operator -n "$ns" --set crds.enabled=false >"$work/t-nocrd.yaml"
  check "helm $v: the chart's CRDs for Kubernetes 1.20 are crds/zimroom.yaml and crds/zimroomset.yaml without CEL rules and selectable fields" same_crd "$work/t-1.20.yaml" nocel
  check "helm $v: the chart's CRDs for Kubernetes 1.25 are crds/ with their CEL rules, without selectable fields" same_crd "$work/t-1.25.yaml" cel
  check "helm $v: the chart's CRDs for Kubernetes 1.31 are crds/zimroom.yaml and crds/zimroomset.yaml" same_crd "$work/t-1.31.yaml" full
  check "helm $v: helm template without a cluster renders both whole CRDs" same_crd "$work/t-default.yaml" full
  check "helm $v: crds.enabled=false renders no CRD" bash -c "! grep -q 'kind: CustomResourceDefinition' '$work/t-nocrd.yaml'"
done
check "the chart has no crds/ directory (Helm would install the CRD twice)" test ! -e charts/zim-operator/crds
"$HELM4" install --dry-run=client zim charts/zim-operator -n "$ns" >"$work/dry-zim.txt"
check "the release zim names its objects zim-operator, not zim-zim-operator" \
  bash -c "grep -q '^  name: zim-operator$' '$work/dry-zim.txt' && ! grep -q 'zim-zim' '$work/dry-zim.txt'"
check "without image.tag the notes warn that the image is tagged with the chart's appVersion" \
  grep -q "^WARNING: image.tag is not set, so the image is tagged with the chart's appVersion" "$work/dry-zim.txt"

# --- One pass per Helm major version -------------------------------------------------------------------------------
mkdir -p "$work/bin"
ln -sf "$KUBECTL" "$work/bin/kubectl"
export PATH="$work/bin:$PATH"

run_pass() { # helm binary, Kubernetes (floor or current)
  local helm="$1" version="$2"
  ln -sf "$helm" "$work/bin/helm"
  pass="helm $("$helm" version --template '{{.Version}}'), Kubernetes $version"
  local t0=$SECONDS
  kube="$work/kube-$("$helm" version --template '{{.Version}}')-$version"
  KUBECONFIG=$(ZIM_KUBE_VERSION=$version scripts/kube-env.sh start "$kube" $$) || fatal "cannot start kube-apiserver and etcd"
  export KUBECONFIG
  pass="helm $("$helm" version --template '{{.Version}}'), kube-apiserver $(cat "$kube/version")"
  local floor=""; [[ $(cat "$kube/version") == v1.20.* ]] && floor=1
  sim_port=$(free_port)
  ZEGO_SERVER_SECRET="$secret" "$bin" simulate --listen "127.0.0.1:$sim_port" --app-id "$app" >"$work/sim-$pass.log" 2>&1 &
  sim_pid=$!
  until_ok 20 sim "rooms/$app" || fatal "the simulator did not start"

  # Install, steps 1-3.
  run_block install-namespaces && run_block install-credentials && run_block install-helm \
    || fatal "the README's install steps 1-3"
  ok "install steps 1-3 run as written (namespaces, credentials Secret, helm install)"
  check "both CRDs are established" k wait --for condition=established "crd/$crd" "crd/$set_crd" --timeout=30s
  check "both CRDs belong to the release and are kept on uninstall" \
    test "$(crd_annotation meta\\.helm\\.sh/release-name)/$(crd_annotation helm\\.sh/resource-policy)/$(crd_annotation meta\\.helm\\.sh/release-name "$set_crd")/$(crd_annotation helm\\.sh/resource-policy "$set_crd")" = "$release/keep/$release/keep"
  if [[ -n $floor ]]; then
    check "the CRDs are served without CEL rules or selectable fields on Kubernetes 1.20" no_cel
  else
    check "the CRDs are served with their CEL rules (and the ZimRoom CRD's selectable fields) on a current Kubernetes" has_cel
    check "helm install found the admission API by discovery and installed the release's ValidatingAdmissionPolicy" has_vap
  fi
  deployment >"$work/deploy.json" || fatal "the release has no Deployment"
  check "the release's objects are named zim-operator, image registry.invalid/zim-operator:0.1.0" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
c = d["spec"]["template"]["spec"]["containers"][0]
got = (d["metadata"]["name"], c["image"])
sys.exit(0 if got == ("zim-operator", "registry.invalid/zim-operator:0.1.0") else str(got))' "$work/deploy.json"

  # Step 4 with the operator running.
  start_operator || fatal "the operator did not start under the chart's ServiceAccount"
  run_block install-room || fatal "the README's install step 4 (a room Ready)"
  check "install step 4: game-room is Ready and its room exists in ZIM" sim_room game-42
  apply_set >/dev/null || bad "applying a ZimRoomSet"
  check "a ZimRoomSet becomes Ready under the chart's RBAC, its two rooms in ZIM" set_converged

  # The install notes, pasted into a shell.
  helm get notes "$release" -n "$ns" >"$work/notes.txt" || bad "helm get notes"
  if grep -q WARNING "$work/notes.txt"; then bad "the notes warn although image.tag is set"; else ok "the notes print no warning with image.tag set"; fi
  sed -n '/^# create a room$/,/^# end$/p' "$work/notes.txt" >"$work/notes.sh"
  echo 'echo pasted-to-the-end' >>"$work/notes.sh"
  if [[ $(grep -c . "$work/notes.sh") -lt 5 ]]; then
    bad "the notes hold no '# create a room' ... '# end' block"
  elif bash "$work/notes.sh" >"$work/notes.log" 2>&1 && grep -qx pasted-to-the-end "$work/notes.log" \
      && ! grep -qi 'here-document' "$work/notes.log"; then
    ok "the notes' commands, pasted into a shell, run to the end and make a room Ready"
  else
    sed 's/^/  | /' "$work/notes.sh" >&2; sed 's/^/  > /' "$work/notes.log" >&2
    bad "the notes' commands, pasted into a shell"
  fi

  # kubectl explain (the CRD's descriptions).
  k explain zimroom.spec.deletionPolicy >"$work/explain.txt" 2>&1 || true
  if grep -qw Delete "$work/explain.txt" && grep -qw Orphan "$work/explain.txt"; then
    ok "kubectl explain zimroom.spec.deletionPolicy names Delete and Orphan"
  else
    sed 's/^/  > /' "$work/explain.txt" >&2
    bad "kubectl explain zimroom.spec.deletionPolicy names Delete and Orphan"
  fi

  # Upgrade to a version whose CRD changed.
  make_next_version
  if run_block upgrade-helm "$work/next"; then
    ok "the README's upgrade runs as written"
    check "helm upgrade upgraded the CRD" bash -c "$KUBECTL get crd $crd -o json | grep -q 'changed by the upgrade check'"
    deployment >"$work/deploy.json"
    check "the upgrade set the new image tag and kept the credentials value" python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))["spec"]["template"]["spec"]["containers"][0]
env = {e["name"]: e.get("value") for e in c["env"]}
got = (c["image"], env.get("ZIM_CREDENTIALS_SECRET"))
sys.exit(0 if got == ("registry.invalid/zim-operator:0.1.1", "zim-system/zego-app") else str(got))' "$work/deploy.json"
  else
    bad "the README's upgrade"
  fi
  check "rooms are still Ready after the upgrade" ready chat game-room

  # Uninstall, keeping the CRD and the rooms.
  run_block uninstall && ok "the README's uninstall runs as written" || bad "the README's uninstall"
  stop_operator # the chart's operator is gone with the release
  check "after uninstall the CRD stays" crd_exists
  check "after uninstall the ZimRooms stay" k -n chat get zimroom game-room
  check "after uninstall the rooms stay in ZIM" sim_room game-42
  check "after uninstall the ZimRoomSet and its rooms stay" set_kept
  check "no room was destroyed so far" test "$(destroys)" = 0

  # Installing again picks everything up; removing the CRD with the operator running destroys no room.
  run_block install-helm || fatal "installing again over the kept CRD"
  ok "installing again takes the kept CRD back"
  start_operator || fatal "the operator did not start again"
  check "the room is Ready with the operator back" until_ok 30 ready chat game-room
  if run_block uninstall-all "$root" 120; then
    ok "the README's removal of the CRD and the chart completes with the operator running"
  else
    bad "the README's removal of the CRD and the chart (kubectl delete crd with the operator running)"
  fi
  stop_operator
  check "deleting the CRD destroyed no room (no DestroyRoom)" test "$(destroys)" = 0
  check "the rooms are still in ZIM" sim_room game-42
  check "the notes' room is still in ZIM" sim_room hello
  check "the ZimRoomSet's rooms are still in ZIM" set_rooms
  until_ok 60 crd_gone || fatal "a CRD is still there"

  # The CRD with kubectl, per cluster age, handed over to the chart.
  if [[ -n $floor ]]; then
    expect_failure=1
    if run_block crd-kubectl-current; then
      bad "the README says server-side apply of crds/zimroom.yaml fails on 1.20, but it worked"
    elif grep -q x-kubernetes-validations "$work/crd-kubectl-current.log"; then
      ok "as the README says, server-side apply of the CRD fails on 1.20 (x-kubernetes-validations)"
    else
      sed 's/^/  > /' "$work/crd-kubectl-current.log" >&2
      bad "server-side apply failed on 1.20 for another reason than the README gives"
    fi
    expect_failure=""
    run_block crd-kubectl-old && run_block crd-kubectl-old && k wait --for condition=established "crd/$crd" "crd/$set_crd" --timeout=30s >/dev/null \
      && ok "the README's CRD command for Kubernetes 1.20-1.24 installs it and runs again (upgrade)" \
      || fatal "the README's CRD command for Kubernetes 1.20-1.24"
  else
    run_block crd-kubectl-current && run_block crd-kubectl-current \
      && k wait --for condition=established "crd/$crd" "crd/$set_crd" --timeout=30s >/dev/null \
      && ok "the README's CRD command for Kubernetes 1.25 and newer installs it and runs again (upgrade)" \
      || fatal "the README's CRD command for Kubernetes 1.25 and newer"
    check "server-side apply of crds/ drew no warning" bash -c "! grep -qi warning '$work/crd-kubectl-current.log'"
    check "the kubectl-made CRDs have their CEL rules and selectable fields" has_cel
  fi
  expect_failure=1
  if run_block install-helm; then
    expect_failure=""
    bad "the README says helm install refuses a CRD created by kubectl, but it worked"
  else
    expect_failure=""
    check "helm install refuses the kubectl-made CRD, as the README says" grep -q 'invalid ownership metadata' "$work/install-helm.log"
    run_block adopt-crd && run_block install-helm || fatal "handing the CRD over to the chart as the README says"
    ok "after the README's hand-over, helm install takes the kubectl-made CRD"
  fi
  start_operator || fatal "the operator did not start"
  run_block install-room || fatal "install step 4 again"
  local before; before=$(destroys)
  if run_block destroy-rooms; then
    ok "the README's deletion of every ZimRoom runs as written"
    check "deleting the ZimRooms on purpose destroyed their rooms" test "$(destroys)" -gt "$before"
    check "game-room's room is gone from ZIM" no_sim_room game-42
  else
    bad "the README's deletion of every ZimRoom"
  fi

  # The CRD deleted after the operator is gone.
  run_block install-room || fatal "install step 4 again"
  run_block uninstall || fatal "uninstall"
  stop_operator
  before=$(destroys)
  if run_block delete-crd-without-operator "$root" 120; then
    ok "the README's deletion of the CRD without the operator completes"
  else
    bad "the README's deletion of the CRD without the operator"
  fi
  check "both CRDs are gone" crd_gone
  check "no room was destroyed by it" test "$(destroys)" = "$before"
  check "the room stays in ZIM" sim_room game-42

  kill "$sim_pid" 2>/dev/null; wait "$sim_pid" 2>/dev/null || true; sim_pid=""
  scripts/kube-env.sh stop "$kube" >/dev/null 2>&1; kube=""
  echo "[$pass] done in $((SECONDS - t0)) s"
}

run_pass "$HELM3" floor
run_pass "$HELM4" floor
run_pass "$HELM3" current
run_pass "$HELM4" current
finish
