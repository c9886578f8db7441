#!/usr/bin/env bash
# Starts (or stops) a Kubernetes 1.36 CRD server on 127.0.0.1: etcd 3.5 and apiextensions-apiserver, both from
# scripts/crd-server-build.sh, with their state, certificates and logs in DIR, and writes DIR/kubeconfig (client
# certificate in group system:masters) for kubectl.
#
#   scripts/crd-server.sh start DIR    # returns once the server answers for CRDs; prints KUBECONFIG=DIR/kubeconfig
#   scripts/crd-server.sh stop DIR
#
# It serves CustomResourceDefinitions and custom resources only: no core API (namespaces, services), so it is started
# without the admission plugins that need one (namespace lifecycle, webhooks, admission policies) and without API
# priority and fairness; its own core-API informers point at itself and log that they find nothing, and /readyz
# stays false for that reason. None of this is on the path of CRD validation: the structural schema, defaulting,
# CEL rules and their cost budget run as in kube-apiserver. Fails loudly when a process does not come up, with the
# end of its log.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "crd-server: $*" >&2; }
die() { log "$*"; exit 1; }

cmd="${1:-}"
dir="${2:-}"
[[ -n "$cmd" && -n "$dir" ]] || die "usage: $0 start|stop DIR"

stop() {
  for name in apiserver etcd; do
    if [[ -f "$dir/$name.pid" ]]; then
      pid=$(cat "$dir/$name.pid")
      if kill "$pid" 2>/dev/null; then
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
      fi
      rm -f "$dir/$name.pid"
    fi
  done
}

case "$cmd" in
stop)
  stop
  exit 0
  ;;
start) ;;
*) die "usage: $0 start|stop DIR" ;;
esac

eval "$(scripts/crd-server-build.sh)"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
command -v openssl >/dev/null || die "missing openssl"

# Certificates: one CA for the serving certificate and the client certificate.
(
  cd "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=zim-crd-server-ca"
  openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1"
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile server.ext
  openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=admin"
  printf 'extendedKeyUsage=clientAuth\n' >admin.ext
  openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out admin.crt -days 2 -extfile admin.ext
) >"$dir/certs.log" 2>&1 || die "creating certificates failed: $(tail -5 "$dir/certs.log")"

read -r etcd_client etcd_peer api_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')

cat >"$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: crd-server
  cluster: {server: "https://127.0.0.1:$api_port", certificate-authority: "$dir/ca.crt"}
users:
- name: admin
  user: {client-certificate: "$dir/admin.crt", client-key: "$dir/admin.key"}
contexts:
- name: crd-server
  context: {cluster: crd-server, user: admin}
current-context: crd-server
EOF

trap 'stop' ERR
"$CRD_ETCD" --name zim-crd --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_client" --advertise-client-urls "http://127.0.0.1:$etcd_client" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "zim-crd=http://127.0.0.1:$etcd_peer" >"$dir/etcd.log" 2>&1 &
echo $! >"$dir/etcd.pid"
for i in $(seq 100); do
  curl -fsS "http://127.0.0.1:$etcd_client/health" >/dev/null 2>&1 && break
  kill -0 "$(cat "$dir/etcd.pid")" 2>/dev/null || die "etcd exited: $(tail -5 "$dir/etcd.log")"
  ((i < 100)) || die "etcd did not answer within 10 s: $(tail -5 "$dir/etcd.log")"
  sleep 0.1
done

# --kubeconfig (the core API the server's informers read) and the delegated authentication/authorization point at
# the server itself: clients authenticate with certificates of our CA, and system:masters is always allowed, so
# neither TokenReview nor SubjectAccessReview is needed.
"$CRD_APISERVER" --etcd-servers "http://127.0.0.1:$etcd_client" \
  --bind-address 127.0.0.1 --secure-port "$api_port" \
  --tls-cert-file "$dir/server.crt" --tls-private-key-file "$dir/server.key" --client-ca-file "$dir/ca.crt" \
  --kubeconfig "$dir/kubeconfig" --authentication-kubeconfig "$dir/kubeconfig" \
  --authorization-kubeconfig "$dir/kubeconfig" --authentication-skip-lookup \
  --enable-priority-and-fairness=false \
  --disable-admission-plugins NamespaceLifecycle,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,MutatingAdmissionPolicy \
  >"$dir/apiserver.log" 2>&1 &
echo $! >"$dir/apiserver.pid"
for i in $(seq 120); do
  curl -fsS --cacert "$dir/ca.crt" --cert "$dir/admin.crt" --key "$dir/admin.key" \
    "https://127.0.0.1:$api_port/apis/apiextensions.k8s.io/v1/customresourcedefinitions" >/dev/null 2>&1 && break
  kill -0 "$(cat "$dir/apiserver.pid")" 2>/dev/null || die "apiextensions-apiserver exited: $(tail -5 "$dir/apiserver.log")"
  ((i < 120)) || die "apiextensions-apiserver did not answer within 60 s: $(tail -5 "$dir/apiserver.log")"
  sleep 0.5
done
trap - ERR
log "CRD server on https://127.0.0.1:$api_port, state and logs in $dir"
echo "KUBECONFIG=$dir/kubeconfig"
