# shellcheck shell=bash
# The helpers every check script sources: one line per check, and one closing line that scripts/test.sh adds up.
#
#   source scripts/lib/check.sh
#   check_begin NAME [CONTEXT_VAR]   the closing line says "NAME checks: ..."; when CONTEXT_VAR is given, the
#                                    value of that variable (e.g. readme-check's current pass) prefixes each
#                                    ok/FAILED/SKIPPED line as "[value] "
#   at_exit COMMAND...               run at exit, after the closing line (cleanup: servers, temporary files)
#   ok WHAT                          "ok: WHAT", counted as passed
#   bad WHAT                         "FAILED: WHAT", counted as failed; the script goes on
#   skip WHAT                        "SKIPPED: WHAT", counted as skipped (a check that cannot run here)
#   check WHAT COMMAND...            ok when COMMAND succeeds, else bad; COMMAND's output is shown only on failure
#   counted COMMAND...               runs a program that prints its own ok:/FAILED:/SKIPPED: lines (e.g. Python)
#                                    and counts them; a non-zero exit without a FAILED line counts as one failure
#   fatal WHAT                       bad WHAT, then finish: for a check the rest cannot do without
#   finish                           prints the closing line and exits: 1 if any check failed, else 0
#
# The closing line, the one format scripts/test.sh reads:
#   NAME checks: N passed, M failed            (", K skipped" added when K > 0)
# A script that stops on an unexpected error (set -e) before finish still prints it, with one more failure.

passed=0
failed=0
skipped=0
_check_name=""
_check_context=""
_check_finished=""
_check_cleanups=()
_check_log=""

check_begin() {
  _check_name="$1"
  _check_context="${2:-}"
  _check_log="$(mktemp)"
  trap _check_exit EXIT
}

at_exit() {
  _check_cleanups+=("$*")
}

_check_line() { # kind text
  local context=""
  [[ -n $_check_context && -n ${!_check_context:-} ]] && context="[${!_check_context}] "
  echo "$1: $context$2"
}

ok() { passed=$((passed + 1)); _check_line ok "$*"; }
bad() { failed=$((failed + 1)); _check_line FAILED "$*"; }
skip() { skipped=$((skipped + 1)); _check_line SKIPPED "$*"; }

check() {
  local what="$1"; shift
  if "$@" >"$_check_log" 2>&1; then ok "$what"; else sed 's/^/  > /' "$_check_log"; bad "$what"; fi
}

counted() {
  local out rc=0 p f s
  out="$(mktemp)"
  { "$@" || echo "$?" >"$out.rc"; } | tee "$out"
  [[ -f "$out.rc" ]] && rc=$(cat "$out.rc")
  p=$(grep -c '^ok: ' "$out" || true)
  f=$(grep -c '^FAILED: ' "$out" || true)
  s=$(grep -c '^SKIPPED: ' "$out" || true)
  rm -f "$out" "$out.rc"
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
  if ((rc != 0 && f == 0)); then bad "$1 exited $rc without naming a failed check"; fi
  return 0
}

_check_summary() {
  local line="$_check_name checks: $passed passed, $failed failed"
  ((skipped == 0)) || line+=", $skipped skipped"
  echo "$line"
}

finish() {
  _check_finished=1
  _check_summary
  ((failed == 0)) || exit 1
  exit 0
}

fatal() { bad "$* (cannot go on)"; finish; }

_check_exit() {
  local rc=$?
  if [[ -z $_check_finished ]]; then # stopped before finish: an unexpected error, or a script without finish
    if ((rc != 0)); then _check_line FAILED "unexpected error, exit $rc (see above)"; failed=$((failed + 1)); fi
    _check_summary
    ((failed == 0)) || rc=1
  fi
  local c
  for c in "${_check_cleanups[@]}"; do eval "$c" || true; done
  rm -f "$_check_log"
  exit "$rc"
}
