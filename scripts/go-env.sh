# Sourced by the scripts that build Go programs for the tests (kube-apiserver and etcd of the current Kubernetes,
# the kstatus helper, the gopher-lua runner). Module mode against the committed go.mod/go.sum files: modules come
# from the Go module proxy and are checked against go.sum; no other download (GOTOOLCHAIN=local: the machine's Go
# is used as it is, never a toolchain fetched on the fly). Go's module and build caches live outside the checkout,
# under $ZIM_CACHE/go, so a second build is incremental.
#
# Sets ZIM_CACHE, and go_check: returns non-zero with GO_PROBLEM set when the machine's Go cannot build our modules.
ZIM_CACHE="${ZIM_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zim-operator}"
# The preinstalled Go (/usr/local/go) before Debian's older golang-go, which the 1.20 build installs.
[[ -x /usr/local/go/bin/go ]] && PATH="/usr/local/go/bin:$PATH"
export PATH
export GOMODCACHE="$ZIM_CACHE/go/mod" GOCACHE="$ZIM_CACHE/go/build" GOPATH="$ZIM_CACHE/go/path"
export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 GO111MODULE=on GOWORK=off
GO_MIN_MINOR=26

go_check() {
  if ! command -v go >/dev/null 2>&1; then
    GO_PROBLEM="no 'go' command on PATH: the tests need Go 1.$GO_MIN_MINOR or newer (the machine's toolchain)"
    return 1
  fi
  local v minor
  v=$(go env GOVERSION 2>/dev/null || true)
  minor=$(sed -E 's/^go1\.([0-9]+).*/\1/' <<<"$v")
  if ! [[ "$minor" =~ ^[0-9]+$ ]] || ((minor < GO_MIN_MINOR)); then
    GO_PROBLEM="$(command -v go) is ${v:-of unknown version}; the tests' Go modules need Go 1.$GO_MIN_MINOR or newer"
    return 1
  fi
}
