#!/usr/bin/env bash
# Builds a Kubernetes 1.36 CRD server — apiextensions-apiserver, the server kube-apiserver embeds for
# CustomResourceDefinitions, with the same structural-schema, CEL and cost-budget code — and provides etcd 3.5 for it,
# both from Debian unstable (sid), so the CRD and its CEL rules can be checked on a current server (see
# scripts/crd-server.sh and scripts/cel-check.sh). Debian stable's kube-apiserver (1.20) has no CEL.
#
# How:
#   - A private apt configuration (its own lists and archives under the cache; the machine's apt state is not
#     touched) whose only source is the machine's own configured Debian archive with the suite replaced by sid.
#   - apt-get download of golang-k8s-apiextensions-apiserver-dev (its main.go included) with every golang-*-dev
#     package it depends on, golang-1.26-go/-src and etcd-server; the .debs are unpacked into a private tree,
#     nothing is installed.
#   - A GOPATH-mode build (no Go module download) with sid's Go 1.26 and two wiring changes for standalone use,
#     both as upstream's own test server sets them up (pkg/cmd/server/testing/testserver.go): discovery on (the
#     embedded server leaves it to kube-apiserver) and the OpenAPI v2 document published, so kubectl can find the
#     custom resources and apply --server-side works. The version is stamped as v<Debian's upstream version>.
#
# The binaries are cached outside the checkout ($ZIM_TEST_CACHE, default ~/.cache/zim-operator, under crd-server/),
# keyed on this script and the package versions; the unpacked tree and Go's build cache are removed after a
# successful build (set ZIM_CRD_SERVER_KEEP_TREE=1 to keep them). The first run takes about 10 minutes on 2 busy
# cores. Prints shell assignments (use: eval "$(scripts/crd-server-build.sh)"):
#   CRD_APISERVER   the apiextensions-apiserver binary
#   CRD_ETCD        the etcd binary
# Fails loudly (non-zero exit, the reason on stderr) when Debian has moved on: a package gone, or a version other
# than the one this script was written for (the expectations are the variables below).
set -euo pipefail
cd "$(dirname "$0")/.."

want_k8s_minor=0.36   # golang-k8s-apiextensions-apiserver-dev 0.36.x is Kubernetes 1.36.x
go_pkg=golang-1.26
want_etcd_minor=3.5

cache="${ZIM_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zim-operator}/crd-server"
log() { echo "crd-server-build: $*" >&2; }
die() { log "$*"; exit 1; }

script_hash=$(sha256sum "$0" | cut -c1-12)
stamp="$cache/bin/$script_hash.env"
if [[ -f "$stamp" ]]; then
  # shellcheck disable=SC1090
  source "$stamp"
  if [[ -x "${CRD_APISERVER:-}" && -x "${CRD_ETCD:-}" ]]; then
    cat "$stamp"
    exit 0
  fi
fi

for tool in apt-get apt-cache dpkg-deb python3; do
  command -v "$tool" >/dev/null || die "missing $tool"
done

# --- private apt configuration: the machine's Debian archive, suite sid -----------------------------------------
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[[ -n "$codename" ]] || die "cannot tell this machine's Debian release (no VERSION_CODENAME in /etc/os-release)"
apt_dir="$cache/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
# Every configured source (one-line or deb822 format) that serves the machine's release under its plain codename
# (not -updates or -security) is the main Debian archive: the same URI with suite sid, component main.
python3 - "$codename" >"$apt_dir/sources.list" <<'PY'
import glob, re, sys
codename = sys.argv[1]
seen = set()
def emit(uri, signed):
    if uri in seen:
        return
    seen.add(uri)
    opts = f"[signed-by={signed}] " if signed else ""
    print(f"deb {opts}{uri} sid main")
for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        m = re.match(r"\s*deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s", line + " ")
        if m and m.group(3) == codename:
            signed = re.search(r"signed-by=(\S+?)[\s\]]", m.group(1) or "")
            emit(m.group(2), signed.group(1) if signed else "")
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in re.split(r"\n\s*\n", open(path).read()):
        fields = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
            continue
        if codename in fields.get("suites", "").split():
            for uri in fields.get("uris", "").split():
                emit(uri, fields.get("signed-by", ""))
PY
[[ -s "$apt_dir/sources.list" ]] ||
  die "no configured apt source serves Debian '$codename'; cannot derive the sid source for the CRD server"
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::Archives=$apt_dir/archives"
  -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "Dir::State::status=/dev/null"
  -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=/dev/null"
  -o "APT::Architecture=$(dpkg --print-architecture)" -o "APT::Sandbox::User=root")
log "reading Debian sid's package lists"
apt-get "${apt_opts[@]}" update -qq >&2 || die "apt-get update of Debian sid failed"

candidate() { apt-cache "${apt_opts[@]}" policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }'; }
k8s_version=$(candidate golang-k8s-apiextensions-apiserver-dev)
go_version=$(candidate "$go_pkg-go")
etcd_version=$(candidate etcd-server)
[[ -n "$k8s_version" && "$k8s_version" != "(none)" ]] ||
  die "Debian sid has no golang-k8s-apiextensions-apiserver-dev any more"
[[ "$k8s_version" == "$want_k8s_minor".* ]] ||
  die "Debian sid has moved on: golang-k8s-apiextensions-apiserver-dev is $k8s_version, this script builds $want_k8s_minor.x (Kubernetes 1.${want_k8s_minor#0.}); update want_k8s_minor and go_pkg after checking the Go version it needs"
[[ -n "$go_version" && "$go_version" != "(none)" ]] ||
  die "Debian sid has moved on: $go_pkg-go is gone; set go_pkg to the Go that Kubernetes ${k8s_version%%-*} needs"
[[ "$etcd_version" == "$want_etcd_minor".* ]] ||
  die "Debian sid has moved on: etcd-server is ${etcd_version:-gone}, this script expects etcd $want_etcd_minor.x"
upstream=${k8s_version%%-*}            # 0.36.4
kube_version="v1.${upstream#0.}"       # v1.36.4
log "Kubernetes $kube_version (golang-k8s-apiextensions-apiserver-dev $k8s_version), $go_pkg-go $go_version, etcd $etcd_version"

key="$script_hash-$k8s_version-$go_version-$etcd_version"
bin_dir="$cache/bin/$key"
if [[ -x "$bin_dir/apiextensions-apiserver" && -x "$bin_dir/etcd" ]]; then
  printf 'CRD_APISERVER=%s\nCRD_ETCD=%s\n' "$bin_dir/apiextensions-apiserver" "$bin_dir/etcd" | tee "$stamp"
  exit 0
fi

# --- download and unpack ------------------------------------------------------------------------------------------
start=$(date +%s)
debs="$cache/debs"
mkdir -p "$debs"
mapfile -t golibs < <(apt-cache "${apt_opts[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
  --no-breaks --no-replaces --no-enhances golang-k8s-apiextensions-apiserver-dev 2>/dev/null |
  grep -E '^golang-.*-dev$' | sort -u)
((${#golibs[@]} > 50)) || die "resolving the Go libraries of golang-k8s-apiextensions-apiserver-dev found only ${#golibs[@]}"
log "downloading ${#golibs[@]} Go library packages, $go_pkg-go, $go_pkg-src and etcd-server"
rm -f "$debs"/*.deb
(cd "$debs" && apt-get "${apt_opts[@]}" download -qq "${golibs[@]}" "$go_pkg-go" "$go_pkg-src" etcd-server >&2) ||
  die "downloading the packages from Debian sid failed"

root="$cache/root"
rm -rf "$root"
mkdir -p "$root"
log "unpacking"
for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$root" || die "cannot unpack $deb"; done
goroot="$root/usr/lib/go-${go_pkg#golang-}"
gopath="$root/usr/share/gocode"
src="$gopath/src/k8s.io/apiextensions-apiserver"
[[ -x "$goroot/bin/go" ]] || die "$go_pkg-go has no $goroot/bin/go"
[[ -f "$src/main.go" ]] || die "golang-k8s-apiextensions-apiserver-dev has no main.go"
[[ -x "$root/usr/bin/etcd" ]] || die "etcd-server has no usr/bin/etcd"
"$root/usr/bin/etcd" --version >/dev/null 2>&1 || die "sid's etcd does not run on this machine"

# --- the two wiring changes for a standalone server ---------------------------------------------------------------
patch_line() { # file, exact existing line, replacement lines (the existing line is kept unless dropped by the caller)
  python3 - "$@" <<'PY' || die "the wiring change in $1 no longer applies: Debian's source has changed"
import sys
path, old, new = sys.argv[1], sys.argv[2] + "\n", sys.argv[3] + "\n"
text = open(path).read()
if text.count(old) != 1:
    sys.exit(f"{path}: expected exactly one line {old.strip()!r}")
open(path, "w").write(text.replace(old, new))
PY
}
# Discovery: the embedded server leaves /api and /apis to kube-apiserver; standalone it must serve them itself.
patch_line "$src/pkg/apiserver/apiserver.go" \
  $'\tc.GenericConfig.EnableDiscovery = false' \
  $'\tc.GenericConfig.EnableDiscovery = true // standalone: serve discovery (kube-apiserver does it when embedded)'
# OpenAPI v2: only v3 is configured; kubectl's apply --server-side and explain read v2 too.
v3=$'\tserverConfig.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(openapi.GetOpenAPIDefinitionsWithoutDisabledFeatures(generatedopenapi.GetOpenAPIDefinitions), openapinamer.NewDefinitionNamer(apiserver.Scheme, scheme.Scheme))'
patch_line "$src/pkg/cmd/server/options/options.go" "$v3" \
  "$v3"$'\n\t// standalone: publish OpenAPI v2 as well\n\tserverConfig.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(openapi.GetOpenAPIDefinitionsWithoutDisabledFeatures(generatedopenapi.GetOpenAPIDefinitions), openapinamer.NewDefinitionNamer(apiserver.Scheme, scheme.Scheme))'

# --- build ----------------------------------------------------------------------------------------------------------
log "building apiextensions-apiserver $kube_version in GOPATH mode (about 10 minutes the first time)"
mkdir -p "$bin_dir"
v=k8s.io/component-base/version
minor=${upstream#0.}; minor=${minor%%.*}
(
  cd "$src"
  export GOROOT="$goroot" PATH="$goroot/bin:$PATH" GOPATH="$gopath" GO111MODULE=off GOPROXY=off GOFLAGS= \
    GOTOOLCHAIN=local GOCACHE="$cache/go-build" CGO_ENABLED=0
  go build -trimpath -ldflags "-X $v.gitVersion=$kube_version -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean" \
    -o "$bin_dir/apiextensions-apiserver.tmp" . >&2
) || die "building apiextensions-apiserver failed"
mv "$bin_dir/apiextensions-apiserver.tmp" "$bin_dir/apiextensions-apiserver"
cp "$root/usr/bin/etcd" "$bin_dir/etcd"
if [[ "${ZIM_CRD_SERVER_KEEP_TREE:-}" != 1 ]]; then
  rm -rf "$root" "$cache/go-build"
fi
log "built in $(($(date +%s) - start)) s: $bin_dir"
printf 'CRD_APISERVER=%s\nCRD_ETCD=%s\n' "$bin_dir/apiextensions-apiserver" "$bin_dir/etcd" | tee "$stamp"
