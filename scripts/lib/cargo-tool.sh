# shellcheck shell=bash
# Installs a cargo subcommand once, pinned, outside the checkout, and puts it on PATH:
#
#   source scripts/lib/cargo-tool.sh
#   cargo_tool CRATE VERSION        e.g. cargo_tool cargo-deny 0.20.2, then `cargo deny ...`
#
# The tools live in ~/.cache/zim-operator/cargo-tools (or $ZIM_TEST_CACHE/cargo-tools). A tool whose `--version`
# already ends in VERSION is kept. Tools' own release profiles are usually fat LTO with one codegen unit (about
# 10 minutes on 2 cores for cargo-deny); a tool gains nothing from that, so it is built with LTO off and 16 units
# (about a third of the time).
cargo_tool() {
  local crate=$1 version=$2
  local tools="${ZIM_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zim-operator}/cargo-tools"
  export PATH="$tools/bin:$PATH"
  if ! cargo "${crate#cargo-}" --version 2>/dev/null | grep -q " $version\$"; then
    echo "installing $crate $version into $tools (once)" >&2
    CARGO_INSTALL_ROOT="$tools" CARGO_TARGET_DIR="$tools/build" \
      CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
      cargo install --quiet --locked "$crate" --version "$version" >&2
    rm -rf "$tools/build"
  fi
}
