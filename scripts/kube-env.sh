#!/usr/bin/env bash
# Runs a real etcd + kube-apiserver on 127.0.0.1 for the controller's end-to-end tests (the CEL rules' included),
# the chart checks and the README check.
#
#   scripts/kube-env.sh start DIR [OWNER_PID]   start both in DIR; print DIR/kubeconfig when /readyz answers
#                                               (DIR/version holds the version kube-apiserver reports)
#   scripts/kube-env.sh stop DIR                stop them
#   scripts/kube-env.sh stop-apiserver|start-apiserver|stop-etcd|start-etcd DIR
#                                               stop or restart one of them (same ports and data), for outage tests
#
# Which Kubernetes: ZIM_KUBE_VERSION=current (the default: Kubernetes 1.37 and etcd 3.7, built from their Go
# modules) or floor (Kubernetes 1.20 from Debian's source package, with Debian's etcd 3.4); both are built by
# scripts/kube-apiserver-build.sh and cached outside the checkout. Everything binds to 127.0.0.1 on free ports.
# With OWNER_PID, a watchdog stops both when that process exits, so a test binary that dies never leaves servers
# behind. Any failure exits non-zero with the reason and the server log's tail.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cmd="${1:-}"; dir="${2:-}"
[[ -n "$cmd" && -n "$dir" ]] || { echo "usage: $0 start|stop DIR [OWNER_PID]" >&2; exit 2; }
log() { echo "kube-env: $*" >&2; }

# Stops one process of DIR (apiserver, etcd, watchdog) and waits until it has exited (etcd 3.7 takes a few seconds
# to shut down; a restart before that would find its ports still bound), killing it after 20 s.
stop_one() {
  local pidfile="$dir/$1.pid" pid
  [[ -f "$pidfile" ]] || return 0
  pid=$(cat "$pidfile")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

stop() {
  for p in apiserver etcd watchdog; do stop_one "$p"; done
}

# A free port below the kernel's ephemeral range: a port from that range, free when chosen, can be taken by an
# outgoing connection (kube-apiserver's own, to etcd) before the server binds it.
free_port() {
  python3 - <<'PY'
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(200):
    port = random.randint(10000, max(10001, low - 1))
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    raise SystemExit("no free port below the ephemeral range")
PY
}

fail() {
  log "$1"
  for f in etcd.log apiserver.log; do
    [[ -f "$dir/$f" ]] && { echo "--- last lines of $dir/$f" >&2; tail -n 20 "$dir/$f" >&2; }
  done
  stop
  exit 1
}

launch() { # etcd|apiserver: run DIR/run-NAME.sh in the background
  bash "$dir/run-$1.sh" >>"$dir/$1.log" 2>&1 &
  echo $! >"$dir/$1.pid"
}

case "$cmd" in
  stop) stop; exit 0 ;;
  stop-apiserver|stop-etcd) stop_one "${cmd#stop-}"; exit 0 ;;
  start-apiserver|start-etcd) launch "${cmd#start-}"; exit 0 ;;
  start) ;;
  *) echo "usage: $0 start|stop|stop-apiserver|start-apiserver|stop-etcd|start-etcd DIR [OWNER_PID]" >&2; exit 2 ;;
esac
owner="${3:-}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

command -v openssl >/dev/null 2>&1 || { apt-get install -y -qq openssl >&2 || fail "cannot install openssl"; }
version="${ZIM_KUBE_VERSION:-current}"
built="$("$here/kube-apiserver-build.sh" "$version")" || fail "cannot provide kube-apiserver ($version) and etcd (see above)"
eval "$built"
echo "$KUBE_VERSION" >"$dir/version"
log "kube-apiserver $KUBE_VERSION ($version) with $("$KUBE_ETCD" --version 2>/dev/null | head -n 1)"

etcd_client=$(free_port); etcd_peer=$(free_port); api_port=$(free_port)

# etcd
cat >"$dir/run-etcd.sh" <<RUN
exec "$KUBE_ETCD" --name zim-test --data-dir "$dir/etcd-data" \\
  --listen-client-urls "http://127.0.0.1:$etcd_client" --advertise-client-urls "http://127.0.0.1:$etcd_client" \\
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \\
  --initial-cluster "zim-test=http://127.0.0.1:$etcd_peer"
RUN
launch etcd

# Certificates: a CA, the serving certificate for 127.0.0.1, and the service-account key pair.
if [[ ! -f "$dir/ca.crt" ]]; then
  (
    cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 -subj "/CN=zim-test-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=kube-apiserver" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 30 \
      -extfile server.ext 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    token=$(openssl rand -hex 16)
    echo "$token,zim-test-admin,zim-test-admin,system:masters" >tokens.csv
    echo "$token" >admin.token
  ) || fail "cannot create certificates with openssl"
fi

for _ in $(seq 1 50); do
  if (echo >"/dev/tcp/127.0.0.1/$etcd_client") 2>/dev/null; then break; fi
  sleep 0.2
done

# Flags that differ between the versions: 1.20 still has an insecure port to turn off (the flag is gone since 1.24).
extra=""
[[ "$KUBE_VERSION" == v1.20.* ]] && extra="--insecure-port=0"
cat >"$dir/run-apiserver.sh" <<RUN
exec "$KUBE_APISERVER" $extra \\
  --etcd-servers="http://127.0.0.1:$etcd_client" \\
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \\
  --tls-cert-file="$dir/server.crt" --tls-private-key-file="$dir/server.key" \\
  --client-ca-file="$dir/ca.crt" \\
  --token-auth-file="$dir/tokens.csv" \\
  --authorization-mode=RBAC \\
  --service-account-key-file="$dir/sa.pub" --service-account-signing-key-file="$dir/sa.key" \\
  --service-account-issuer=https://kubernetes.default.svc.cluster.local --api-audiences=https://kubernetes.default.svc.cluster.local \\
  --service-cluster-ip-range=10.250.0.0/24 \\
  --endpoint-reconciler-type=none \\
  --disable-admission-plugins=ServiceAccount \\
  --enable-priority-and-fairness=false
RUN
launch apiserver

cat >"$dir/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: zim-test
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority-data: $(base64 -w0 "$dir/ca.crt")
users:
- name: zim-test-admin
  user:
    token: $(cat "$dir/admin.token")
contexts:
- name: zim-test
  context: {cluster: zim-test, user: zim-test-admin}
current-context: zim-test
KUBECONFIG

ready=""
for _ in $(seq 1 300); do
  kill -0 "$(cat "$dir/apiserver.pid")" 2>/dev/null || fail "kube-apiserver exited during start-up"
  kill -0 "$(cat "$dir/etcd.pid")" 2>/dev/null || fail "etcd exited during start-up"
  if curl -sf --cacert "$dir/ca.crt" -H "Authorization: Bearer $(cat "$dir/admin.token")" \
      "https://127.0.0.1:$api_port/readyz" >/dev/null 2>&1; then
    ready=1; break
  fi
  sleep 0.2
done
[[ -n "$ready" ]] || fail "kube-apiserver did not become ready within 60 s"

if [[ -n "$owner" ]]; then
  (
    while kill -0 "$owner" 2>/dev/null; do sleep 1; done
    # One at a time, each waited for and killed if it hangs: kube-apiserver 1.37, sent SIGTERM together with etcd,
    # could hang in its shutdown for good, retrying the vanished etcd.
    for p in apiserver etcd; do stop_one "$p"; done
  ) >/dev/null 2>&1 &
  echo $! >"$dir/watchdog.pid"
fi
echo "$api_port" >"$dir/port"
echo "$dir/kubeconfig"
