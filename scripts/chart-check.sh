#!/usr/bin/env bash
# Checks the Helm chart (run by scripts/test.sh; stops at the first problem):
#  1. helm lint --strict and helm template with default and non-default values, with helm 3 and helm 4;
#  2. the rendered built-in kinds validate with kubernetes-validate --strict;
#  3. the rendered manifests pass a server-side dry-run on a real kube-apiserver (scripts/kube-env.sh);
#  4. RBAC: bound to its ServiceAccount, the chart's roles allow what the operator needs and nothing it does not
#     (kubectl auth can-i --as=system:serviceaccount:…), cluster-wide and per namespace;
#  5. the operator, run with the Deployment's settings and that ServiceAccount's token, reconciles a ZimRoom and a
#     ZimRoomSet (children created, released and deleted): the RBAC is sufficient although Secrets are readable by
#     name only;
#  6. the hardening values (ci/hardened-values.yaml): Secrets limited by name, /metrics protection RBAC, and a
#     NetworkPolicy whose every egress rule has a destination;
#  7. values.schema.json: both helms refuse an unknown key and a wrong type (lint --strict and template);
#  8. monitoring: the PrometheusRule and the dashboard ConfigMap render only when enabled, carry the rules of
#     monitoring/zim-operator.rules.yaml and the JSON of dashboards/zim-operator.json, and the rules extracted from
#     each helm's PrometheusRule pass `promtool check rules`;
#  9. the ValidatingAdmissionPolicy on the server: `kubectl apply` refuses a ZimRoom outside its namespace's
#     room-id-prefixes or with a spec.fromUserId the namespace does not list, with a message naming the annotation;
#     accepts the allowed ones; never blocks edits or the deletion of a room admitted under an older policy; and
#     `kubectl get zimrooms -A --field-selector spec.roomId=X` returns exactly the declaring object;
# 10. unsafe value combinations do not render, with both helms: the values schema names the value, and the template's
#     own message (seen with --skip-schema-validation) says why; the safe forms render what they promise
#     (NetworkPolicy destinations, the callback Ingress's host and TLS, a ServiceMonitor without a token, the PDB
#     and the topology spread only with two replicas or more, kubeVersion);
# 11. the install notes' first room reaches Ready, for the defaults and each ci/*-values.yaml (helm install, the
#     operator with the release's settings, the notes pasted into a shell).
# The server is the current Kubernetes (scripts/kube-env.sh; ZIM_KUBE_VERSION=floor runs the same checks on 1.20,
# where 9 is left out: no admission policies, no field selectors on custom resources).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/check.sh
check_begin chart
eval "$(scripts/tools.sh)"
chart=charts/zim-operator
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  scripts/kube-env.sh stop "$work/kube" >/dev/null 2>&1 || true
  rm -rf "$work"
}
at_exit cleanup

# 1. lint and template, both helms, four value sets.
for helm in "$HELM3" "$HELM4"; do
  v=$("$helm" version --short)
  for values in default ci/namespaced-values.yaml ci/cluster-values.yaml ci/hardened-values.yaml; do
    args=(); [[ $values != default ]] && args=(-f "$chart/$values")
    "$helm" lint --strict "$chart" "${args[@]}" >"$work/lint.log" 2>&1 || { cat "$work/lint.log"; fatal "helm $v lint --strict ($values)"; }
    out="$work/$(basename "$values" .yaml)-$(echo "$v" | cut -c2).yaml"
    "$helm" template zim "$chart" -n zim-system "${args[@]}" >"$out" || fatal "helm $v template ($values)"
    ok "helm $v lint --strict and template ($values)"
  done
done
for values in default namespaced-values cluster-values hardened-values; do
  cmp -s "$work/$values-3.yaml" "$work/$values-4.yaml" || fatal "helm 3 and helm 4 render $values differently"
done
ok "helm 3 and helm 4 render identical manifests"
for helm in "$HELM3" "$HELM4"; do
  "$helm" show readme "$chart" >"$work/readme.txt" || fatal "helm show readme"
  grep -q '^# zim-operator chart' "$work/readme.txt" || fatal "helm $("$helm" version --short) show readme prints no chart README"
  "$helm" package "$chart" -d "$work/pkg" >/dev/null || fatal "helm package"
  tar -tzf "$work"/pkg/zim-operator-*.tgz >"$work/pkg.txt" || fatal "the packaged chart cannot be listed"
  grep -qx 'zim-operator/README.md' "$work/pkg.txt" || fatal "the packaged chart has no README.md"
  rm -rf "$work/pkg"
done
ok "helm show readme prints the chart README, and the packaged chart carries it (helm 3 and 4)"
for helm in "$HELM3" "$HELM4"; do
  "$helm" template zim "$chart" -n zim-system --show-only templates/crd.yaml --show-only templates/crd-zimroomset.yaml \
    --set-string 'crds.annotations.argocd\.argoproj\.io/sync-options=Prune=false\,Delete=false' >"$work/crd-ann.yaml" \
    || fatal "helm template with crds.annotations"
  "$TOOLS_PY" - "$work/crd-ann.yaml" <<'PY' || fatal "crds.annotations is not rendered beside helm.sh/resource-policy on both CRDs"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
assert sorted(d["metadata"]["name"] for d in docs) == ["zimrooms.zim.zego.im", "zimroomsets.zim.zego.im"], docs
for d in docs:
    a = d["metadata"]["annotations"]
    assert a == {"helm.sh/resource-policy": "keep", "argocd.argoproj.io/sync-options": "Prune=false,Delete=false"}, a
PY
  "$helm" template zim "$chart" -n zim-system --set crds.enabled=false >"$work/no-crds.yaml" || fatal "helm template crds.enabled=false"
  grep -q 'kind: CustomResourceDefinition' "$work/no-crds.yaml" && fatal "crds.enabled=false still renders a CRD"
done
ok "crds.annotations reaches both CRDs beside helm.sh/resource-policy: keep (Argo CD's Prune=false), crds.enabled=false renders neither (helm 3 and 4)"

# 2. kubernetes-validate --strict on the built-in kinds (ServiceMonitor and PrometheusRule are CRD kinds it cannot
# know).
split_builtin() { # file -> file of built-in kinds only
  "$TOOLS_PY" - "$1" "$2" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") not in ("ServiceMonitor", "PrometheusRule")]
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
print(len(docs))
PY
}
for values in default namespaced-values cluster-values hardened-values; do
  n=$(split_builtin "$work/$values-4.yaml" "$work/$values-builtin.yaml")
  "$TOOLS_PY" -m kubernetes_validate --strict -k 1.33.0 "$work/$values-builtin.yaml" >"$work/kv.log" 2>&1 \
    || { cat "$work/kv.log"; fatal "kubernetes-validate --strict ($values)"; }
  ok "kubernetes-validate --strict: $n objects ($values)"
done

# 3. server-side dry-run on a real kube-apiserver (the value sets are rendered for the current Kubernetes, whose
# PodDisruptionBudget is policy/v1; on 1.20 that PDB is left out of those dry-runs and the PDB rendered for 1.20,
# policy/v1beta1, is dry-run instead).
kubeconfig=$(scripts/kube-env.sh start "$work/kube" $$)
export KUBECONFIG="$kubeconfig"
k() { "$KUBECTL" "$@"; }
server_version=$(cat "$work/kube/version")
current=1; [[ $server_version == v1.20.* ]] && current=0
# The chart's CRDs as rendered for this server's version (CEL rules and selectable fields only where the server
# knows them); the dry-runs below leave them out.
"$HELM4" template zim "$chart" -n zim-system --kube-version "$server_version" \
  --show-only templates/crd.yaml --show-only templates/crd-zimroomset.yaml >"$work/crd.yaml"
if ((current)); then
  k apply --server-side --field-manager=chart-check -f "$work/crd.yaml" >"$work/crd.log" 2>&1 || { cat "$work/crd.log"; fatal "applying the chart's CRDs on $server_version"; }
  grep -qi warning "$work/crd.log" && { cat "$work/crd.log"; fatal "the chart's CRDs draw warnings on $server_version"; }
  ok "the chart's CRDs (ZimRoom, ZimRoomSet) apply server-side on $server_version without warnings"
else
  k apply -f "$work/crd.yaml" >/dev/null
fi
k wait --for condition=established crd/zimrooms.zim.zego.im crd/zimroomsets.zim.zego.im --timeout=30s >/dev/null
for ns in zim-system team-a team-b chat; do k create namespace "$ns" >/dev/null; done
for values in default namespaced-values cluster-values hardened-values; do
  "$TOOLS_PY" - "$work/$values-4.yaml" "$work/$values-dry.yaml" "$current" <<'PY'
import sys, yaml
skip = ["ServiceMonitor", "PrometheusRule", "CustomResourceDefinition"] + (["PodDisruptionBudget"] if sys.argv[3] == "0" else [])
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") not in skip]
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PY
  k apply --dry-run=server -f "$work/$values-dry.yaml" >"$work/dry.log" 2>&1 || { cat "$work/dry.log"; fatal "server-side dry-run ($values)"; }
  grep -qi warning "$work/dry.log" && { cat "$work/dry.log"; fatal "server-side dry-run ($values) draws warnings"; }
  ok "server-side dry-run on kube-apiserver $server_version ($values), no warnings"
done
"$HELM4" template zim "$chart" -n zim-system --kube-version "$server_version" --show-only templates/pdb.yaml >"$work/pdb.yaml"
want=policy/v1; ((current)) || want=policy/v1beta1
grep -qx "apiVersion: $want" "$work/pdb.yaml" || { cat "$work/pdb.yaml"; fatal "the PDB rendered for $server_version is not $want"; }
k apply --dry-run=server -f "$work/pdb.yaml" >"$work/dry.log" 2>&1 || { cat "$work/dry.log"; fatal "server-side dry-run of the PDB rendered for $server_version"; }
grep -qi warning "$work/dry.log" && { cat "$work/dry.log"; fatal "the PDB rendered for $server_version draws warnings"; }
ok "the PodDisruptionBudget rendered for kube-apiserver $server_version is $want and passes its server-side dry-run"

# 4. RBAC by impersonation.
can() { # expect(yes|no) verb resource [namespace flags...]
  local expect="$1"; shift
  local got; got=$(k auth can-i --as="$as" "$@" 2>/dev/null || true)
  [[ "$got" == "$expect" ]] || fatal "can-i $* as $as: expected $expect, got ${got:-error}"
}
k apply -f "$work/default-dry.yaml" >/dev/null
as=system:serviceaccount:zim-system:zim-operator
for ns in chat team-a; do
  can yes list zimrooms.zim.zego.im -n "$ns"; can yes watch zimrooms.zim.zego.im -n "$ns"
  can yes patch zimrooms.zim.zego.im -n "$ns"; can yes patch zimrooms.zim.zego.im --subresource=status -n "$ns"
  can yes update zimrooms.zim.zego.im --subresource=finalizers -n "$ns"
  can no update zimrooms.zim.zego.im --subresource=status -n "$ns"
  can yes create events.events.k8s.io -n "$ns"; can yes patch events.events.k8s.io -n "$ns"
  can yes get secrets/zim-credentials -n "$ns"; can yes watch secrets/zim-credentials -n "$ns"
  can no get secrets -n "$ns"; can no get secrets/other -n "$ns"; can no list secrets -n "$ns"
  can no delete secrets -n "$ns"; can no create secrets -n "$ns"; can no update secrets -n "$ns"
  # Children of ZimRoomSets: created (server-side apply), released (patch) and deleted by the set controller.
  can yes create zimrooms.zim.zego.im -n "$ns"; can yes delete zimrooms.zim.zego.im -n "$ns"
  can no update zimrooms.zim.zego.im -n "$ns"; can no deletecollection zimrooms.zim.zego.im -n "$ns"
  can yes list zimroomsets.zim.zego.im -n "$ns"; can yes watch zimroomsets.zim.zego.im -n "$ns"
  can yes get zimroomsets.zim.zego.im -n "$ns"; can yes patch zimroomsets.zim.zego.im --subresource=status -n "$ns"
  can yes update zimroomsets.zim.zego.im --subresource=finalizers -n "$ns"
  can no patch zimroomsets.zim.zego.im -n "$ns"; can no create zimroomsets.zim.zego.im -n "$ns"
  can no delete zimroomsets.zim.zego.im -n "$ns"; can no update zimroomsets.zim.zego.im --subresource=status -n "$ns"
  can no get pods -n "$ns"; can no create deployments.apps -n "$ns"; can no get configmaps -n "$ns"
done
can yes create leases.coordination.k8s.io -n zim-system; can yes update leases.coordination.k8s.io -n zim-system
# The seal key: created in the release namespace, then read and marked by name only.
can yes create secrets -n zim-system; can yes patch secrets/zim-operator-seal -n zim-system
can no patch secrets/other -n zim-system; can no delete secrets/zim-operator-seal -n zim-system
can no create leases.coordination.k8s.io -n chat; can no create clusterroles.rbac.authorization.k8s.io
can yes get customresourcedefinitions.apiextensions.k8s.io/zimrooms.zim.zego.im
can no get customresourcedefinitions.apiextensions.k8s.io/other.example.com; can no delete customresourcedefinitions.apiextensions.k8s.io/zimrooms.zim.zego.im
can no delete customresourcedefinitions.apiextensions.k8s.io/zimroomsets.zim.zego.im
can yes list namespaces; can yes watch namespaces; can no patch namespaces; can no delete namespaces
ok "cluster-wide RBAC allows exactly what the operator uses, Secrets only by name (checked by impersonation)"

"$HELM4" template ns "$chart" -n zim-system -f "$chart/ci/namespaced-values.yaml" >"$work/ns.yaml"
"$TOOLS_PY" - "$work/ns.yaml" "$work/ns-rbac.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") in ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "Secret")]
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PY
# The cluster-scoped grants in namespaced mode: get on the ZimRoom CRD itself (an uninstall releases rooms), and
# reading the listed Namespaces (their policy annotations) — nothing else.
"$TOOLS_PY" - "$work/ns-rbac.yaml" <<'PY' || fatal "namespaced mode renders cluster-wide RBAC beyond reading the ZimRoom CRD and the listed Namespaces"
import sys, yaml
allowed = [
    [{"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
      "resourceNames": ["zimrooms.zim.zego.im"], "verbs": ["get"]}],
    [{"apiGroups": [""], "resources": ["namespaces"], "resourceNames": ["team-a", "team-b"],
      "verbs": ["get", "list", "watch"]}],
]
# The roles aggregated into admin/edit/view are for the namespaces' users, not the operator (bound to nobody
# here): ZimRooms and ZimRoomSets without their status.
aggregated = {
    "ns-zim-operator-edit": [{"apiGroups": ["zim.zego.im"], "resources": ["zimrooms", "zimroomsets"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]}],
    "ns-zim-operator-view": [{"apiGroups": ["zim.zego.im"], "resources": ["zimrooms", "zimroomsets"],
        "verbs": ["get", "list", "watch"]}],
}
seen, users = [], []
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "ClusterRole":
        labels = d["metadata"].get("labels", {})
        if any(k.startswith("rbac.authorization.k8s.io/aggregate-to-") for k in labels):
            assert d["rules"] == aggregated[d["metadata"]["name"]], d
            users.append(d["metadata"]["name"])
            continue
        assert d["rules"] in allowed, d["rules"]
        seen.append(d["rules"])
    if d and d["kind"] in ("ClusterRoleBinding", "RoleBinding"):
        assert not d["roleRef"]["name"].endswith(("-edit", "-view")), d
assert len(seen) == 2, seen
assert sorted(users) == sorted(aggregated), users
PY
k apply -f "$work/ns-rbac.yaml" >/dev/null
as=system:serviceaccount:zim-system:ns-zim-operator
for ns in team-a team-b; do
  can yes list zimrooms.zim.zego.im -n "$ns"; can yes patch zimrooms.zim.zego.im --subresource=status -n "$ns"
  can yes create zimrooms.zim.zego.im -n "$ns"; can yes delete zimrooms.zim.zego.im -n "$ns"
  can yes watch zimroomsets.zim.zego.im -n "$ns"; can yes patch zimroomsets.zim.zego.im --subresource=status -n "$ns"
  can yes get secrets/zim-credentials -n "$ns"; can no get secrets/other -n "$ns"; can no get secrets -n "$ns"
done
can no list zimroomsets.zim.zego.im -n chat; can no create zimrooms.zim.zego.im -n chat; can no list zimroomsets.zim.zego.im --all-namespaces
can no list zimrooms.zim.zego.im -n chat; can no get secrets/zim-credentials -n chat; can no list zimrooms.zim.zego.im --all-namespaces
can yes get secrets/ns-zim-operator-credentials -n zim-system; can no get secrets/other -n zim-system; can yes create leases.coordination.k8s.io -n zim-system
can yes create secrets -n zim-system; can yes patch secrets/ns-zim-operator-seal -n zim-system; can no create secrets -n team-a
can yes get customresourcedefinitions.apiextensions.k8s.io/zimrooms.zim.zego.im
can no list customresourcedefinitions.apiextensions.k8s.io; can no delete customresourcedefinitions.apiextensions.k8s.io/zimrooms.zim.zego.im
can yes get namespaces/team-a; can no get namespaces/chat; can no patch namespaces/team-a
k get namespaces --as="$as" --field-selector metadata.name=team-b -o name >/dev/null \
  || fatal "a list of namespaces naming team-b is refused in namespaced mode"
k get namespaces --as="$as" -o name >/dev/null 2>&1 && fatal "an unfiltered list of namespaces is allowed in namespaced mode"
ok "namespaced RBAC is limited to the listed namespaces (checked by impersonation)"

# 5. The operator under the ServiceAccount's token reconciles a room and a set. The operator runs as a local process (no
# kubelet runs here) with the environment of the release's Deployment and the token of its ServiceAccount, so the
# chart's RBAC and settings are what it gets. Only what concerns the pod itself is replaced: the addresses it
# listens on, the ZIM endpoint (the simulator), and the pod's files and network (ZIM_CA_FILE, SSL_CERT_FILE and the
# proxy variables name paths and hosts of the pod).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
bin="${CARGO_TARGET_DIR:-target}/debug/zim-operator"
[[ -x $bin ]] || cargo build --quiet --locked
secret=$(openssl rand -hex 16)
sim_port=$(free_port)
ZEGO_SERVER_SECRET=$secret "$bin" simulate --listen "127.0.0.1:$sim_port" --app-id 4242 >"$work/sim.log" 2>&1 &
pids+=($!)
op_pid=""
start_release_operator() { # deployment name, log file
  local deploy sa token server env=()
  deploy=$(k -n zim-system get deployment "$1" -o json) || return 1
  sa=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["spec"]["template"]["spec"]["serviceAccountName"])' <<<"$deploy")
  token=$(k create token "$sa" -n zim-system --duration=1h) || return 1
  server=$(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  rm -f "$work/sa.kubeconfig"
  {
    "$KUBECTL" config --kubeconfig="$work/sa.kubeconfig" set-cluster c --server="$server" \
      --certificate-authority="$work/kube/ca.crt" --embed-certs=true
    "$KUBECTL" config --kubeconfig="$work/sa.kubeconfig" set-credentials sa --token="$token"
    "$KUBECTL" config --kubeconfig="$work/sa.kubeconfig" set-context c --cluster=c --user=sa
    "$KUBECTL" config --kubeconfig="$work/sa.kubeconfig" use-context c
  } >/dev/null || return 1
  mapfile -d '' env < <(python3 -c '
import json, sys
pod_only = {"ZIM_ENDPOINT", "ZIM_ADMIN_ADDR", "ZIM_METRICS_ADDR", "ZIM_CALLBACK_ADDR", "ZIM_CA_FILE", "SSL_CERT_FILE",
            "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"}
for e in json.load(sys.stdin)["spec"]["template"]["spec"]["containers"][0]["env"]:
    if "value" in e and e["name"] not in pod_only:
        sys.stdout.write(e["name"] + "=" + e["value"] + chr(0))' <<<"$deploy")
  local admin_port; admin_port=$(free_port)
  env -i PATH="$PATH" HOME="$HOME" "${env[@]}" POD_NAME=chart-check POD_NAMESPACE=zim-system \
    ZIM_ENDPOINT="http://127.0.0.1:$sim_port" ZIM_ADMIN_ADDR="127.0.0.1:$admin_port" \
    ZIM_METRICS_ADDR="127.0.0.1:$(free_port)" ZIM_CALLBACK_ADDR="127.0.0.1:$(free_port)" \
    "$bin" run --kubeconfig "$work/sa.kubeconfig" >"$2" 2>&1 &
  op_pid=$!
  pids+=("$op_pid")
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$admin_port/readyz" >/dev/null && return 0
    kill -0 "$op_pid" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 20 "$2" >&2
  return 1
}
stop_release_operator() {
  [[ -n $op_pid ]] || return 0
  kill -TERM "$op_pid" 2>/dev/null || true
  wait "$op_pid" 2>/dev/null || true
  op_pid=""
}
k -n chat create secret generic zim-credentials --from-literal=appId=4242 --from-literal=serverSecret="$secret" >/dev/null
start_release_operator zim-operator "$work/op.log" || fatal "the operator did not start with the chart's Deployment settings and ServiceAccount"
k apply -n chat -f - >/dev/null <<YAML
apiVersion: zim.zego.im/v1alpha1
kind: ZimRoom
metadata: {name: rbac-check}
spec:
  credentialsSecretRef: {name: zim-credentials}
  attributes: [{key: topic, value: rbac}]
YAML
if ! k -n chat wait zimroom/rbac-check --for=condition=Ready --timeout=60s >/dev/null 2>&1; then
  tail -n 30 "$work/op.log" >&2
  fatal "the operator under the chart's ServiceAccount did not make the room Ready"
fi
grep -q 'Forbidden\|forbidden' "$work/op.log" && { grep -i forbidden "$work/op.log" | head -5 >&2; fatal "the operator hit a forbidden request"; }
k -n chat delete zimroom rbac-check --timeout=60s >/dev/null || fatal "deleting the room under the chart's RBAC"
ok "the operator with the chart's default settings and ServiceAccount token reconciles and deletes a ZimRoom (Secrets by name only)"
# A ZimRoomSet under the same token: children created (server-side apply), the set's status written, a child the
# set no longer declares released (scaleDown: Orphan patches its deletionPolicy) and deleted.
set_of() { # the set's room IDs, as a YAML flow list
  k apply -n chat -f - >/dev/null <<YAML
apiVersion: zim.zego.im/v1alpha1
kind: ZimRoomSet
metadata: {name: rbac-set}
spec:
  rooms: {ids: $1}
  scaleDown: Orphan
  template:
    spec:
      credentialsSecretRef: {name: zim-credentials}
      attributes: [{key: topic, value: rbac}]
YAML
}
set_ready() { # desired: the set is Ready (AllReady) with that many children
  [[ $(k -n chat get zimroomset rbac-set -o jsonpath='{.status.conditions[?(@.type=="Ready")].reason}/{.status.desired}/{.status.ready}/{.status.existing}' 2>/dev/null) == "AllReady/$1/$1/$1" ]]
}
wait_for() { # seconds command...
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do ((SECONDS < deadline)) || return 1; sleep 0.2; done
}
set_of '[rbac-a, rbac-b]' || fatal "applying a ZimRoomSet"
if ! wait_for 60 set_ready 2; then
  k -n chat get zimroomset rbac-set -o yaml >&2; tail -n 30 "$work/op.log" >&2
  fatal "the operator under the chart's ServiceAccount did not make the ZimRoomSet Ready"
fi
set_of '[rbac-a]'
if ! wait_for 60 set_ready 1; then
  k -n chat get zimroomset rbac-set -o yaml >&2; tail -n 30 "$work/op.log" >&2
  fatal "the operator under the chart's ServiceAccount did not scale the ZimRoomSet down"
fi
curl -sf "http://127.0.0.1:$sim_port/_sim/rooms/4242/rbac-b" >/dev/null || fatal "scaleDown: Orphan destroyed the room rbac-b"
grep -q 'Forbidden\|forbidden' "$work/op.log" && { grep -i forbidden "$work/op.log" | head -5 >&2; fatal "the operator hit a forbidden request with a ZimRoomSet"; }
# No garbage collector runs here (no kube-controller-manager): the remaining child goes by hand, under the operator.
k -n chat delete zimroomset rbac-set --timeout=60s >/dev/null || fatal "deleting the ZimRoomSet"
k -n chat delete zimrooms -l zim.zego.im/set=rbac-set --timeout=60s >/dev/null || fatal "deleting the set's child"
stop_release_operator
k -n chat delete secret zim-credentials >/dev/null
ok "under the same token the operator creates a ZimRoomSet's children, writes its status, releases and deletes a child it no longer declares (checked by the set's status, no forbidden request)"

# 6. The hardening values.
"$TOOLS_PY" - "$work/default-4.yaml" "$work/hardened-values-4.yaml" "$work/namespaced-values-4.yaml" <<'PY' || fatal "rendered hardening options"
import sys, yaml
def docs(path):
    return [d for d in yaml.safe_load_all(open(path)) if d]
def one(ds, kind):
    found = [d for d in ds if d["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind}"
    return found[0]
default, hardened, namespaced = (docs(p) for p in sys.argv[1:4])
# Defaults unchanged for existing users: /metrics on the admin port, no authentication, compiled-in roots.
c = one(default, "Deployment")["spec"]["template"]["spec"]["containers"][0]
env = {e["name"]: e.get("value") for e in c["env"]}
assert "ZIM_METRICS_ADDR" not in env and env["ZIM_METRICS_AUTH"] == "none" and env["ZIM_TLS_ROOTS"] == "webpki", env
assert [p["name"] for p in one(default, "Service")["spec"]["ports"]] == ["admin"]
# Hardened: metrics apart and authenticated, the CA bundle mounted and passed, extra env and volumes.
d = one(hardened, "Deployment")["spec"]["template"]["spec"]
c = d["containers"][0]
env = {e["name"]: e.get("value") for e in c["env"]}
assert env["ZIM_METRICS_ADDR"] == "0.0.0.0:8080" and env["ZIM_METRICS_AUTH"] == "kubernetes", env
assert env["ZIM_CA_FILE"] == "/etc/zim-operator/ca/bundle.pem" and env["HTTPS_PROXY"], env
assert {m["mountPath"] for m in c["volumeMounts"]} == {"/etc/zim-operator/ca", "/etc/ssl/corp"}
assert {v["name"] for v in d["volumes"]} == {"zim-ca", "corp-roots"}
assert [p["name"] for p in one([d for d in hardened if not d["metadata"]["name"].endswith("-callbacks")], "Service")["spec"]["ports"]] == ["metrics"]
assert not [d for d in hardened if d["kind"] == "ServiceMonitor"], "a ServiceMonitor with metrics.auth=kubernetes"
ns_env = {e["name"]: e.get("value") for e in one(namespaced, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]}
assert ns_env["ZIM_CA_FILE"] == "/etc/zim-operator/ca/ca.crt", ns_env
# NetworkPolicy: every egress rule names its destinations (DNS included); IPv6 beside IPv4; probes and metrics.
for ds, name in ((hardened, "hardened"), (namespaced, "namespaced")):
    np = one(ds, "NetworkPolicy")["spec"]
    for rule in np["egress"]:
        assert rule.get("to"), f"{name}: an egress rule without a destination: {rule}"
    dns = np["egress"][0]
    assert dns["to"][0]["namespaceSelector"] and dns["to"][0]["podSelector"], dns
    cidrs = [b["ipBlock"]["cidr"] for r in np["egress"] for b in r["to"] if "ipBlock" in b]
    assert any(":" in c for c in cidrs) and any("." in c for c in cidrs), cidrs
np = one(hardened, "NetworkPolicy")["spec"]
assert sorted(p["port"] for r in np["ingress"] for p in r["ports"]) == [8080, 8081, 8090], np["ingress"]
# Callbacks: off by default; when enabled the address, the container port, a Service, the Ingress with TLS, and
# the NetworkPolicy rule limited to the ingress controller.
assert "ZIM_CALLBACK_ADDR" not in {e["name"] for e in one(default, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]}
assert not [d for d in default if d["kind"] == "Ingress"]
assert env["ZIM_CALLBACK_ADDR"] == "0.0.0.0:8090", env
assert {"name": "callbacks", "containerPort": 8090, "protocol": "TCP"} in c["ports"], c["ports"]
svc = [d for d in hardened if d["kind"] == "Service" and d["metadata"]["name"].endswith("-callbacks")]
assert len(svc) == 1 and svc[0]["spec"]["ports"][0]["targetPort"] == "callbacks", svc
ing = one(hardened, "Ingress")["spec"]
assert ing["tls"][0]["secretName"] == "zim-callbacks-tls" and ing["rules"][0]["host"] == "zim-callbacks.example.com", ing
assert ing["rules"][0]["http"]["paths"][0]["path"] == "/zim/callback", ing
cb_rule = [r for r in np["ingress"] if r["ports"][0]["port"] == 8090][0]
assert cb_rule["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "ingress-nginx"}, cb_rule
assert np["egress"][-1]["ports"][0]["port"] == 3128
PY
ok "hardening values render as documented (metrics port and auth, CA bundle, extra env and volumes, NetworkPolicy destinations and IPv6, callbacks Service, Ingress and ingress rule; defaults unchanged)"

"$HELM4" template hard "$chart" -n zim-system -f "$chart/ci/hardened-values.yaml" >"$work/hard.yaml"
"$TOOLS_PY" - "$work/hard.yaml" "$work/hard-rbac.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") in ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")]
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PY
k apply -f "$work/hard-rbac.yaml" >/dev/null
as=system:serviceaccount:zim-system:hard-zim-operator
for ns in chat team-a; do
  can yes get secrets/zego-app -n "$ns"; can yes get secrets/zego-team -n "$ns"; can no get secrets/other -n "$ns"
  can no list secrets -n "$ns"; can no watch secrets -n "$ns"; can yes list zimrooms.zim.zego.im -n "$ns"
done
can yes get secrets/zego-default -n zim-system; can no get secrets/other -n zim-system; can no list secrets -n zim-system
# A list or watch naming one of the Secrets (a metadata.name field selector) is allowed, an unfiltered one is not.
k -n chat get secrets --as="$as" --field-selector metadata.name=zego-app -o name >/dev/null \
  || fatal "a list of secrets naming zego-app is refused under rbac.secretNames"
k -n chat get secrets --as="$as" -o name >/dev/null 2>&1 && fatal "an unfiltered list of secrets is allowed under rbac.secretNames"
can yes create tokenreviews.authentication.k8s.io; can yes create subjectaccessreviews.authorization.k8s.io
as=system:serviceaccount:monitoring:prometheus-k8s
can yes get /metrics; can no get secrets -n chat
as=system:serviceaccount:zim-system:zim-zim-operator
can no create tokenreviews.authentication.k8s.io
ok "rbac.secretNames limits Secrets to the named ones; metrics.auth=kubernetes grants reviews and a metrics reader (checked by impersonation)"

# 7. values.schema.json refuses unknown keys and wrong types, with both helms, at lint and at render time.
printf 'zim:\n  qsp: 40\n' >"$work/unknown-key.yaml"
printf 'zim:\n  qps: "forty"\n' >"$work/wrong-type.yaml"
printf 'dashboard:\n  labels:\n    grafana_dashboard: 1\n' >"$work/wrong-label-type.yaml"
for helm in "$HELM3" "$HELM4"; do
  v=$("$helm" version --short)
  for bad in unknown-key wrong-type wrong-label-type; do
    "$helm" lint --strict "$chart" -f "$work/$bad.yaml" >"$work/lint.log" 2>&1 && { cat "$work/lint.log"; fatal "helm $v lint --strict accepts $bad.yaml"; }
    grep -q "schema" "$work/lint.log" || { cat "$work/lint.log"; fatal "helm $v lint refuses $bad.yaml, but not through the values schema"; }
    "$helm" template zim "$chart" -f "$work/$bad.yaml" >/dev/null 2>&1 && fatal "helm $v template accepts $bad.yaml"
  done
  grep -q "qsp" <("$helm" lint --strict "$chart" -f "$work/unknown-key.yaml" 2>&1) || fatal "helm $v's refusal does not name the unknown key"
  ok "helm $v refuses an unknown key (zim.qsp), a wrong type (zim.qps: \"forty\") and a non-string label (values.schema.json)"
done

# 8. monitoring objects: absent by default, present when enabled, built from monitoring/ and dashboards/.
for helm in "$HELM3" "$HELM4"; do
  v=$("$helm" version --short)
  n=$(cut -c2 <<<"$v")
  "$TOOLS_PY" - "$work/default-$n.yaml" "$work/namespaced-values-$n.yaml" monitoring/zim-operator.rules.yaml \
    dashboards/zim-operator.json "$work/rules-$n.yaml" <<'PY' || fatal "helm $v: the PrometheusRule and the dashboard ConfigMap"
import json, sys, yaml
default, enabled, rules_file, dashboard_file, out = sys.argv[1:6]
def docs(path):
    return [d for d in yaml.safe_load_all(open(path)) if d]
kinds = [d["kind"] for d in docs(default)]
assert "PrometheusRule" not in kinds, "a PrometheusRule without prometheusRule.enabled"
assert not [d for d in docs(default) if d["kind"] == "ConfigMap"], "a dashboard ConfigMap without dashboard.enabled"
rendered = docs(enabled)
[rule] = [d for d in rendered if d["kind"] == "PrometheusRule"]
assert rule["metadata"]["labels"]["release"] == "prometheus", rule["metadata"]["labels"]
source = yaml.safe_load(open(rules_file))
got = rule["spec"]
# The values add team: chat to every alert and a base URL to every runbook_url; nothing else differs.
base = "https://git.example.com/platform/zim-operator/blob/v0.1.0/"
for group in source["groups"]:
    for r in group["rules"]:
        r["labels"]["team"] = "chat"
        r["annotations"]["runbook_url"] = base + r["annotations"]["runbook_url"]
assert got == source, "the PrometheusRule's rules differ from monitoring/zim-operator.rules.yaml"
severities = {r["labels"]["severity"] for g in got["groups"] for r in g["rules"]}
assert severities == {"warning", "critical"}, severities
yaml.safe_dump(got, open(out, "w"))
[cm] = [d for d in rendered if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard")]
assert cm["metadata"]["labels"]["grafana_dashboard"] == "1", cm["metadata"]["labels"]
assert cm["metadata"]["annotations"] == {"grafana_folder": "Operators"}, cm["metadata"]
assert cm["data"]["zim-operator.json"] == open(dashboard_file).read().rstrip("\n"), "the ConfigMap's dashboard differs"
json.loads(cm["data"]["zim-operator.json"])
PY
  "$PROMTOOL" check rules "$work/rules-$n.yaml" >"$work/promtool.log" 2>&1 || { cat "$work/promtool.log"; fatal "promtool check rules on helm $v's PrometheusRule"; }
  ok "helm $v: PrometheusRule and dashboard ConfigMap only when enabled, equal to their sources; promtool check rules passes on the rendered rules"
done
"$HELM4" template zim "$chart" -n zim-system --set dashboard.enabled=true --set dashboard.namespace=grafana \
  --set 'dashboard.labels.grafana_dashboard=null' --set-string dashboard.labels.dashboards=zim >"$work/dash.yaml"
"$TOOLS_PY" - "$work/dash.yaml" <<'PY' || fatal "dashboard.namespace and dashboard.labels"
import sys, yaml
[cm] = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "ConfigMap"]
assert cm["metadata"]["namespace"] == "grafana", cm["metadata"]
labels = cm["metadata"]["labels"]
assert labels["dashboards"] == "zim" and "grafana_dashboard" not in labels, labels
PY
ok "the dashboard ConfigMap's namespace and sidecar label are configurable"

# 9. The admission policy and field selectors on the current server (1.20 has neither).
if ((current)); then
  k create namespace tenant-p >/dev/null
  k annotate namespace tenant-p zim.zego.im/room-id-prefixes=tp-,shared- zim.zego.im/from-user-ids=bot >/dev/null
  # Rendered where the cluster serves the API: `helm install` finds it by discovery; `helm template` (and Argo CD,
  # which passes the cluster's API versions) needs --api-versions.
  "$HELM4" template zim "$chart" -n zim-system | grep -q "kind: ValidatingAdmissionPolicy" \
    && fatal "helm template without the API's capability renders the admission policy"
  vap_api=admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy
  "$HELM4" template zim "$chart" -n zim-system --api-versions "$vap_api" \
    --show-only templates/admissionpolicy.yaml >"$work/vap.yaml" || fatal "rendering the admission policy"
  k apply --server-side --field-manager=chart-check -f "$work/vap.yaml" >"$work/vap-apply.log" 2>&1 \
    || { cat "$work/vap-apply.log"; fatal "applying the chart's admission policy on $server_version"; }
  grep -qi warning "$work/vap-apply.log" && { cat "$work/vap-apply.log"; fatal "the admission policy draws warnings"; }
  k get validatingadmissionpolicy zim-operator-zimrooms -o json >"$work/vap.json" \
    || fatal "no ValidatingAdmissionPolicy on $server_version"
  k get validatingadmissionpolicybinding zim-operator-zimrooms >/dev/null 2>&1 \
    || fatal "no ValidatingAdmissionPolicyBinding on $server_version"
  ok "the chart's ValidatingAdmissionPolicy and binding render where the API is served and apply without warnings"
  room() { # name roomId (empty: none, the name is the room ID) [fromUserId]
    local spec=""
    [[ -n $2 ]] && spec="roomId: $2"
    [[ -n ${3:-} ]] && spec="${spec:+$spec, }fromUserId: $3"
    printf 'apiVersion: zim.zego.im/v1alpha1\nkind: ZimRoom\nmetadata: {name: %s, namespace: tenant-p}\nspec: {%s}\n' "$1" "$spec"
  }
  # The policy's type checking happens when the API server loads it: wait until a refusal is seen.
  refused=""
  for _ in $(seq 1 100); do
    if ! room outside other-1 | k apply -f - >"$work/vap.log" 2>&1 && grep -q "zim.zego.im/room-id-prefixes" "$work/vap.log"; then
      refused=1; break
    fi
    k -n tenant-p delete zimroom outside --ignore-not-found >/dev/null 2>&1
    sleep 0.2
  done
  [[ -n $refused ]] || { cat "$work/vap.log"; fatal "kubectl apply of a roomId outside the namespace's prefixes was not refused by the admission policy"; }
  grep -q "is outside the room IDs namespace tenant-p may declare" "$work/vap.log" || { cat "$work/vap.log"; fatal "the refusal does not say why"; }
  ok "kubectl apply refuses a roomId outside the namespace's prefixes, naming zim.zego.im/room-id-prefixes"
  room inside tp-1 | k apply -f - >/dev/null || fatal "a roomId with an allowed prefix was refused"
  room shared shared-1 bot | k apply -f - >/dev/null || fatal "a listed spec.fromUserId was refused"
  room named-outside "" | k apply -f - >"$work/vap.log" 2>&1 && fatal "a ZimRoom without roomId whose name is outside the prefixes was admitted"
  room boss tp-2 ceo | k apply -f - >"$work/vap.log" 2>&1 && fatal "spec.fromUserId ceo (not listed) was admitted"
  grep -q "zim.zego.im/from-user-ids" "$work/vap.log" || { cat "$work/vap.log"; fatal "the fromUserId refusal does not name the annotation"; }
  ok "kubectl apply admits allowed roomIds and listed users, refuses an unlisted spec.fromUserId naming zim.zego.im/from-user-ids"
  # Narrow the policy: rooms admitted before keep working (labels, finalizers, deletion), a roomId change does not.
  k -n tenant-p patch zimroom inside --type=merge -p '{"metadata":{"finalizers":["zim.zego.im/room"]}}' >/dev/null \
    || fatal "adding a finalizer"
  k annotate namespace tenant-p --overwrite zim.zego.im/room-id-prefixes=tq- zim.zego.im/from-user-ids=ops >/dev/null
  ok_edit=""
  for _ in $(seq 1 100); do # the policy reads the Namespace from an informer: wait until it sees the change
    if ! room other-id other-2 | k apply -f - >/dev/null 2>&1; then ok_edit=1; break; fi
    k -n tenant-p delete zimroom other-id --ignore-not-found >/dev/null 2>&1; sleep 0.2
  done
  [[ -n $ok_edit ]] || fatal "the narrowed policy was never applied"
  k -n tenant-p label zimroom inside team=chat >/dev/null || fatal "a label on a room admitted under the older policy was refused"
  k -n tenant-p patch zimroom shared --type=merge -p '{"metadata":{"annotations":{"note":"x"}}}' >/dev/null \
    || fatal "an annotation on a room whose fromUserId the narrowed policy no longer lists was refused"
  k -n tenant-p patch zimroom inside --type=merge -p '{"spec":{"roomId":"tp-9"}}' >"$work/vap.log" 2>&1 \
    && fatal "changing roomId to one outside the narrowed prefixes was admitted"
  grep -q "zim.zego.im/room-id-prefixes: tq-" "$work/vap.log" || { cat "$work/vap.log"; fatal "the roomId change was refused, but not by the policy"; }
  k -n tenant-p delete zimroom inside --wait=false >/dev/null || fatal "deleting a room admitted under the older policy"
  k -n tenant-p patch zimroom inside --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null \
    || fatal "removing the finalizer of a room being deleted was refused"
  k -n tenant-p wait --for=delete zimroom/inside --timeout=30s >/dev/null || fatal "the room did not go"
  ok "a room admitted under an older policy can still be labelled, annotated and deleted (finalizer removed); a roomId change is checked"
  # Field selectors: which object declares a room.
  k create namespace tenant-q >/dev/null
  room lobby shared-lobby | sed 's/tenant-p/tenant-q/' | k apply -f - >/dev/null
  room lobby-2 tq-lobby | sed 's/tenant-p/tenant-q/' | k apply -f - >/dev/null
  got=$(k get zimrooms -A --field-selector spec.roomId=shared-lobby -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name} {end}')
  [[ $got == "tenant-q/lobby " ]] || fatal "kubectl get zimrooms -A --field-selector spec.roomId=shared-lobby returned '$got'"
  got=$(k get zimrooms -A --field-selector spec.roomId=shared-1 -o name)
  [[ $got == "zimroom.zim.zego.im/shared" ]] || fatal "--field-selector spec.roomId=shared-1 returned '$got'"
  k get zimrooms -A --field-selector spec.roomName=x >"$work/fs.log" 2>&1 && fatal "a field selector on a field that is not selectable was accepted"
  ok "kubectl get zimrooms -A --field-selector spec.roomId=X returns exactly the declaring object"
  # Turned off, or on a server without the API: not rendered.
  "$HELM4" template zim "$chart" -n zim-system --api-versions "$vap_api" --set admissionPolicy.enabled=false | grep -q "kind: ValidatingAdmissionPolicy" \
    && fatal "admissionPolicy.enabled=false still renders the policy"
  "$HELM4" template zim "$chart" -n zim-system -f "$chart/ci/namespaced-values.yaml" --api-versions "$vap_api" >"$work/ns-vap.yaml"
  "$TOOLS_PY" - "$work/ns-vap.yaml" <<'PY' || fatal "the binding in namespaced mode"
import sys, yaml
[b] = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "ValidatingAdmissionPolicyBinding"]
sel = b["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"][0]
assert sel == {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team-a", "team-b"]}, sel
PY
  ok "admissionPolicy.enabled=false renders no policy; in namespaced mode the binding covers the watched namespaces only"
fi

# 10. Unsafe value combinations: refused by the schema (naming the value) and by the template (saying why), with
# both helms; the safe forms render what they promise.
refuses() { # helm what schema-field(dotted, empty: the schema accepts) template-message helm-args...
  local helm="$1" what="$2" field="$3" message="$4"; shift 4
  local v; v=$("$helm" version --short)
  if "$helm" template zim "$chart" -n zim-system "$@" >"$work/refused.log" 2>&1; then
    fatal "helm $v renders $what"
  fi
  if [[ -n $field ]]; then
    local pattern="$field"; [[ $v == v4.* ]] && pattern="'/${field//.//}'"
    grep -q "schema" "$work/refused.log" && grep -qF "$pattern" "$work/refused.log" \
      || { cat "$work/refused.log"; fatal "helm $v refuses $what, but its schema error does not name $field"; }
    "$helm" template zim "$chart" -n zim-system --skip-schema-validation "$@" >"$work/refused.log" 2>&1 \
      && fatal "helm $v --skip-schema-validation renders $what"
  fi
  grep -qF "$message" "$work/refused.log" || { cat "$work/refused.log"; fatal "helm $v refuses $what without saying \"$message\""; }
}
np_on=(--set networkPolicy.enabled=true)
api=(--set 'networkPolicy.apiServerCIDRs={10.96.0.1/32}')
ing_on=(--set callbacks.enabled=true --set callbacks.ingress.enabled=true)
host=(--set callbacks.ingress.host=zim.example.com)
for helm in "$HELM3" "$HELM4"; do
  v=$("$helm" version --short)
  refuses "$helm" "networkPolicy.enabled=true without apiServerCIDRs" networkPolicy.apiServerCIDRs \
    "networkPolicy.apiServerCIDRs must list the Kubernetes API server's addresses" "${np_on[@]}"
  refuses "$helm" "networkPolicy.enabled=true without zimCIDRs" networkPolicy.zimCIDRs \
    "networkPolicy.zimCIDRs must be set when networkPolicy.enabled is true" "${np_on[@]}" "${api[@]}"
  refuses "$helm" "the callback Ingress without a host" callbacks.ingress.host \
    "callbacks.ingress.host must be set when callbacks.ingress.enabled is true" "${ing_on[@]}"
  refuses "$helm" "the callback Ingress without TLS" callbacks.ingress.tls \
    'callbacks.ingress.tls must have a block whose hosts list "zim.example.com"' "${ing_on[@]}" "${host[@]}"
  refuses "$helm" "the callback Ingress with TLS for another host" "" \
    'callbacks.ingress.tls must have a block whose hosts list "zim.example.com"' "${ing_on[@]}" "${host[@]}" \
    --set 'callbacks.ingress.tls[0].secretName=t' --set 'callbacks.ingress.tls[0].hosts[0]=other.example.com'
  refuses "$helm" "a ServiceMonitor with metrics.auth=kubernetes" metrics.serviceMonitor.enabled \
    "metrics.serviceMonitor.enabled=true cannot be combined with metrics.auth=kubernetes" \
    --set metrics.auth=kubernetes --set metrics.serviceMonitor.enabled=true
  refuses "$helm" "a PDB whose minAvailable equals replicaCount" "" \
    "podDisruptionBudget.minAvailable (2) must be smaller than replicaCount (2)" --set podDisruptionBudget.minAvailable=2
  refuses "$helm" "a PDB with minAvailable 100%" "" "podDisruptionBudget.minAvailable 100% would block" \
    --set-string podDisruptionBudget.minAvailable=100%
  refuses "$helm" "a Kubernetes older than the chart's kubeVersion" "" "chart requires kubeVersion" --kube-version v1.19.16
  ok "helm $v refuses NetworkPolicy without API-server or ZIM CIDRs, the callback Ingress without a host or TLS for it, a ServiceMonitor with metrics.auth=kubernetes, a PDB blocking drains, Kubernetes < 1.20 (schema and template messages)"

  n=$(cut -c2 <<<"$v")
  r() { local out="$work/safe-$1-$n.yaml"; shift; "$helm" template zim "$chart" -n zim-system "$@" >"$out" || fatal "helm $v template $*"; }
  r np "${np_on[@]}" "${api[@]}" --set 'networkPolicy.zimCIDRs={203.0.113.0/24}'
  r ing "${ing_on[@]}" "${host[@]}" --set 'callbacks.ingress.tls[0].secretName=t' \
    --set 'callbacks.ingress.tls[0].hosts[0]=zim.example.com'
  r sm --set metrics.serviceMonitor.enabled=true --set metrics.port=8080
  r default
  r one --set replicaCount=1
  r floor --kube-version v1.20.0
  r nospread --set topologySpread.enabled=false --set podDisruptionBudget.enabled=false
  r zone --set topologySpread.topologyKey=topology.kubernetes.io/zone --set topologySpread.whenUnsatisfiable=DoNotSchedule
  r own --set 'topologySpreadConstraints[0].maxSkew=2' --set 'topologySpreadConstraints[0].topologyKey=rack' \
    --set 'topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway'
  "$TOOLS_PY" - "$work" "$n" <<'PY' || fatal "helm $v: the safe forms of the guarded values"
import sys, yaml
work, n = sys.argv[1:3]
def docs(name):
    return [d for d in yaml.safe_load_all(open(f"{work}/safe-{name}-{n}.yaml")) if d]
def kind(ds, k):
    return [d for d in ds if d["kind"] == k]
# NetworkPolicy: every egress rule has peers; the ZIM rule allows exactly zimCIDRs; nothing allows any address.
[np] = kind(docs("np"), "NetworkPolicy")
egress = np["spec"]["egress"]
assert all(r.get("to") for r in egress), egress
assert egress[1]["to"] == [{"ipBlock": {"cidr": "10.96.0.1/32"}}], egress[1]
assert egress[2] == {"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": [{"port": 443, "protocol": "TCP"}]}, egress[2]
assert len(egress) == 3, egress
# The callback Ingress: its host, and TLS for that host.
[ing] = kind(docs("ing"), "Ingress")
assert [r["host"] for r in ing["spec"]["rules"]] == ["zim.example.com"], ing["spec"]["rules"]
assert ing["spec"]["tls"] == [{"secretName": "t", "hosts": ["zim.example.com"]}], ing["spec"]["tls"]
# The ServiceMonitor (metrics.auth none): the metrics port, plain HTTP, and no token of any kind.
[sm] = kind(docs("sm"), "ServiceMonitor")
[ep] = sm["spec"]["endpoints"]
assert ep["port"] == "metrics" and ep["scheme"] == "http", ep
assert not {"bearerTokenFile", "bearerTokenSecret", "authorization", "basicAuth", "oauth2"} & set(ep), ep
# PDB and spread by default with two replicas; neither with one; policy/v1beta1 on 1.20.
default = docs("default")
[dep] = kind(default, "Deployment")
assert dep["spec"]["replicas"] == 2
selector = dep["spec"]["selector"]["matchLabels"]
[pdb] = kind(default, "PodDisruptionBudget")
assert pdb["apiVersion"] == "policy/v1" and pdb["spec"] == {"minAvailable": 1, "selector": {"matchLabels": selector}}, pdb
spread = dep["spec"]["template"]["spec"]["topologySpreadConstraints"]
assert spread == [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
                   "labelSelector": {"matchLabels": selector}}], spread
one = docs("one")
assert not kind(one, "PodDisruptionBudget"), "a PDB with replicaCount=1"
assert "topologySpreadConstraints" not in kind(one, "Deployment")[0]["spec"]["template"]["spec"]
[pdb] = kind(docs("floor"), "PodDisruptionBudget")
assert pdb["apiVersion"] == "policy/v1beta1", pdb["apiVersion"]
nospread = docs("nospread")
assert not kind(nospread, "PodDisruptionBudget")
assert "topologySpreadConstraints" not in kind(nospread, "Deployment")[0]["spec"]["template"]["spec"]
[zone] = kind(docs("zone"), "Deployment")[0]["spec"]["template"]["spec"]["topologySpreadConstraints"]
assert zone["topologyKey"] == "topology.kubernetes.io/zone" and zone["whenUnsatisfiable"] == "DoNotSchedule", zone
own = kind(docs("own"), "Deployment")[0]["spec"]["template"]["spec"]["topologySpreadConstraints"]
assert own == [{"maxSkew": 2, "topologyKey": "rack", "whenUnsatisfiable": "ScheduleAnyway"}], own
PY
  ok "helm $v: NetworkPolicy egress only to the listed CIDRs, the Ingress with its host and TLS, a ServiceMonitor without a token, PDB (policy/v1, v1beta1 on 1.20) and a soft hostname spread only with 2+ replicas"
done


# 11. The install notes' first room, for every documented value set (the defaults and ci/*-values.yaml), on the
# real API server: `helm install` (the CRD is already there: crds.enabled=false; the Prometheus Operator's kinds
# are not served here, so the namespaced set installs without its ServiceMonitor and PrometheusRule; the created
# credentials Secret carries the simulator's AppId and secret), the operator with the release's settings (as in 5),
# the notes' block pasted into a shell with only its `<…>` placeholders replaced, then the room must be Ready and
# exist in ZIM. The default credentials Secret the cluster and hardened sets name is created first, as an operator
# of the chart would.
k -n zim-system create secret generic zego-default --from-literal=appId=4242 --from-literal=serverSecret="$secret" >/dev/null
n=0
for values in default namespaced-values cluster-values hardened-values; do
  n=$((n + 1)); rel="notes$n"
  args=(--set crds.enabled=false --set image.tag=0.1.0)
  [[ $values != default ]] && args+=(-f "$chart/ci/$values.yaml")
  [[ $values == namespaced-values ]] && args+=(--set metrics.serviceMonitor.enabled=false --set prometheusRule.enabled=false
    --set credentials.appId=4242 --set credentials.serverSecret="$secret")
  "$HELM4" install "$rel" "$chart" -n zim-system "${args[@]}" >"$work/notes-install.log" 2>&1 \
    || { cat "$work/notes-install.log"; fatal "helm install ($values) for the notes check"; }
  "$HELM4" get notes "$rel" -n zim-system >"$work/notes-$values.txt"
  sed -n '/^# create a room$/,/^# end$/p' "$work/notes-$values.txt" \
    | sed "s|<your AppId>|4242|g; s|<server secret from the ZEGO console>|$secret|g" >"$work/notes.sh"
  echo 'echo pasted-to-the-end' >>"$work/notes.sh"
  grep -q '<[^>]*>' "$work/notes.sh" && { cat "$work/notes.sh"; fatal "the notes ($values) hold a placeholder the check does not know"; }
  ns=$(sed -n 's/^  namespace: //p' "$work/notes.sh" | head -1)
  [[ -n $ns ]] || { cat "$work/notes-$values.txt"; fatal "the notes ($values) hold no room"; }
  start_release_operator "$rel-zim-operator" "$work/op-$values.log" || fatal "the operator of the release ($values) did not start"
  PATH="$(dirname "$KUBECTL"):$PATH" bash "$work/notes.sh" >"$work/notes.log" 2>&1 || true
  if grep -qx pasted-to-the-end "$work/notes.log" && curl -sf "http://127.0.0.1:$sim_port/_sim/rooms/4242/hello" >/dev/null; then
    ok "the notes' first room ($values): pasted into a shell, Ready in $ns and created in ZIM"
  else
    sed 's/^/  | /' "$work/notes.sh" >&2; sed 's/^/  > /' "$work/notes.log" >&2; tail -n 20 "$work/op-$values.log" >&2
    fatal "the notes' first room ($values)"
  fi
  k -n "$ns" delete zimroom hello --timeout=60s >/dev/null || fatal "deleting the notes' room ($values)"
  curl -sf "http://127.0.0.1:$sim_port/_sim/rooms/4242/hello" >/dev/null && fatal "deleting the notes' room ($values) left it in ZIM"
  stop_release_operator
  "$HELM4" uninstall "$rel" -n zim-system >/dev/null || fatal "helm uninstall ($values)"
  k -n "$ns" delete secret zim-credentials --ignore-not-found >/dev/null
  k annotate namespace "$ns" zim.zego.im/default-credentials- >/dev/null
done

finish
