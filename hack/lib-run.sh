# shellcheck shell=bash
# Small helpers for the top-level hack/ scripts: timed steps that say what
# they are doing, and a clear failure line. Sourced, never executed.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPT_START=$(date +%s)

say() { printf '[%s +%4ss] %s\n' "$(basename "$0")" "$(( $(date +%s) - SCRIPT_START ))" "$*" >&2; }

# step "what" command...: runs the command, printing its duration.
step() {
  local what="$1"; shift
  local start rc
  start=$(date +%s)
  say "== $what"
  "$@" && rc=0 || rc=$?
  if (( rc != 0 )); then
    say "FAILED: $what (exit $rc after $(( $(date +%s) - start ))s)"
    return "$rc"
  fi
  say "   $what done in $(( $(date +%s) - start ))s"
}
