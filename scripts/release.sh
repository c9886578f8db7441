#!/usr/bin/env bash
# Makes a release's artifacts from a clean checkout, in one command:
#
#   scripts/release.sh VERSION [OUT]        e.g. scripts/release.sh 0.2.0        (OUT defaults to dist/VERSION)
#
# 1. Bumps the version: Cargo.toml and Cargo.lock, the chart's version and appVersion, and the CHANGELOG (the
#    Unreleased section becomes "## [VERSION] - DATE" under a new, empty Unreleased), then commits that and tags
#    it `vVERSION` (ZIM_RELEASE_NO_COMMIT=1 leaves the bump uncommitted and untagged, e.g. to try the script).
# 2. Builds into OUT:
#    - zim-operator-VERSION-linux-amd64: the static binary (glibc, crt-static; the image's is musl, see below);
#    - zim-operator-VERSION.tgz: the packaged chart (`helm package`), with its README;
#    - zimroom-VERSION.yaml, zimroomset-VERSION.yaml: the CRDs for `kubectl apply` users;
#    - zim-operator-VERSION.cdx.json: the software bill of materials (CycloneDX, from the crate graph, by
#      cargo-cyclonedx, installed once and pinned outside the checkout like cargo-deny);
#    - SHA256SUMS: the checksums of all of them.
# 3. Prints what cannot be done from here — pushing the image and the chart need registries and credentials —
#    as the exact commands to run (docs/RELEASING.md says the same).
#
# It refuses a dirty tree or an existing tag, and checks the packaged chart's version and the binary's
# `--version` before it writes the checksums.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "release: $*" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || die "usage: scripts/release.sh VERSION [OUT]"
version=$1
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || die "VERSION must be SemVer (e.g. 0.2.0), not '$version'"
out=${2:-dist/$version}
[[ -z $(git status --porcelain) ]] || die "the working tree has changes: commit or stash them first"
git rev-parse -q --verify "refs/tags/v$version" >/dev/null && die "tag v$version exists already"
eval "$(scripts/tools.sh)" >/dev/null
[[ -n ${HELM4:-} ]] || die "scripts/tools.sh did not provide helm"

echo "== version $version"
python3 - "$version" <<'PY'
import datetime, re, sys
v = sys.argv[1]
def sub(path, pattern, repl, count=1):
    text = open(path).read()
    new, n = re.subn(pattern, repl, text, count=count, flags=re.M)
    if n != count:
        sys.exit(f"release: {path}: {pattern!r} not found")
    open(path, "w").write(new)
sub("Cargo.toml", r'^version = "[^"]*"', f'version = "{v}"')
sub("charts/zim-operator/Chart.yaml", r'^version: .*$', f'version: {v}')
sub("charts/zim-operator/Chart.yaml", r'^appVersion: .*$', f'appVersion: "{v}"')
today = datetime.date.today().isoformat()
sub("CHANGELOG.md", r'^## \[Unreleased\]$', f'## [Unreleased]\n\n## [{v}] - {today}')
PY
cargo update --workspace --offline --quiet 2>/dev/null || cargo update --workspace --quiet
if [[ ${ZIM_RELEASE_NO_COMMIT:-0} != 1 ]]; then
  git commit --quiet -am "Release $version"
  git tag -a "v$version" -m "zim-operator $version"
fi

mkdir -p "$out"
echo "== static binary"
target=x86_64-unknown-linux-gnu
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$target"
bin="${CARGO_TARGET_DIR:-target}/$target/release/zim-operator"
# ldd says "not a dynamic executable" of a static binary, and "statically linked" of a static PIE.
ldd "$bin" >"$out/.ldd" 2>&1 || true
grep -Eq "not a dynamic executable|statically linked" "$out/.ldd" || die "the binary is not static: $(head -1 "$out/.ldd")"
rm -f "$out/.ldd"
"$bin" --version | grep -qx "zim-operator $version" || die "the binary says '$("$bin" --version)', not $version"
cp "$bin" "$out/zim-operator-$version-linux-amd64"

echo "== chart and CRDs"
"$HELM4" package charts/zim-operator -d "$out" >/dev/null
[[ -f "$out/zim-operator-$version.tgz" ]] || die "helm package did not write zim-operator-$version.tgz"
"$HELM4" show chart "$out/zim-operator-$version.tgz" | grep -qx "appVersion: $version" || die "the packaged chart's appVersion is not $version"
"$HELM4" show readme "$out/zim-operator-$version.tgz" | grep -q '^# zim-operator chart' || die "the packaged chart has no README"
cp crds/zimroom.yaml "$out/zimroom-$version.yaml"
cp crds/zimroomset.yaml "$out/zimroomset-$version.yaml"

echo "== SBOM"
source scripts/lib/cargo-tool.sh
cargo_tool cargo-cyclonedx 0.5.9
cargo cyclonedx --format json --spec-version 1.5 --target "$target" --override-filename sbom >/dev/null
mv sbom.json "$out/zim-operator-$version.cdx.json"
python3 - "$out/zim-operator-$version.cdx.json" "$version" <<'PY'
import json, sys
bom = json.load(open(sys.argv[1]))
comp = bom["metadata"]["component"]
assert comp["name"] == "zim-operator" and comp["version"] == sys.argv[2], comp
names = {c["name"] for c in bom.get("components", [])}
for crate in ("kube", "tokio", "rustls", "hmac"):
    assert crate in names, f"{crate} missing from the SBOM"
PY

echo "== checksums"
(cd "$out" && sha256sum -- zim-operator-* zimroom-* > SHA256SUMS && sha256sum --check --quiet SHA256SUMS)

cat <<EOF

Artifacts in $out:
$(cd "$out" && ls -1)

Not done from here (registries and credentials; see docs/RELEASING.md):
  git push origin v$version
  docker buildx build --platform linux/amd64,linux/arm64 -t <registry>/zim-operator:$version --push .
  helm push $out/zim-operator-$version.tgz oci://<registry>/charts
  # attach $out/* to the release for v$version
EOF
