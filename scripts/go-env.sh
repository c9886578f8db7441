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

# Builds the Go program in module directory MOD (relative to the checkout) into
# $ZIM_CACHE/tools/NAME/<key>/NAME, keyed on its .go files, go.mod, go.sum and the Go version, and prints the
# binary's path; an existing build is reused. LABEL says what is built, for the log. Fails loudly (non-zero exit,
# the reason on stderr) when a file is missing, Go is unusable, a module cannot be fetched or the build fails.
go_helper_build() { # MOD NAME LABEL
  local mod="$1" name="$2" label="$3" key bin start
  for f in go.mod go.sum; do
    [[ -f "$mod/$f" ]] || { echo "$name-build: missing $mod/$f" >&2; return 1; }
  done
  go_check || { echo "$name-build: $GO_PROBLEM" >&2; return 1; }
  key=$({ cat "$mod"/*.go "$mod/go.mod" "$mod/go.sum"; go env GOVERSION; } | sha256sum | cut -c1-16)
  bin="$ZIM_CACHE/tools/$name/$key/$name"
  if [[ ! -x "$bin" ]]; then
    echo "$name-build: building $label ($(go env GOVERSION))" >&2
    mkdir -p "$(dirname "$bin")"
    start=$(date +%s)
    (cd "$mod" && go build -trimpath -o "$bin.tmp" .) >&2 || { echo "$name-build: go build of $mod failed (see above)" >&2; return 1; }
    mv "$bin.tmp" "$bin"
    echo "$name-build: built $bin in $(($(date +%s) - start)) s" >&2
  fi
  echo "$bin"
}
