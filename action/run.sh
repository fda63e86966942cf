#!/usr/bin/env bash
# The reconciler GitHub Action's main step: run one reconciler command, record its outputs
# ($GITHUB_OUTPUT), put its result in the job summary ($GITHUB_STEP_SUMMARY) and in a markdown
# file for the pull-request comment, and fail the step unless the exit code means success.
#
# Inputs arrive as environment variables (INPUT_*, set by action.yml; never interpolated into
# this script). Exit codes (the README's): 0 ok; 2 changes (plan) or deferred steps (apply), a
# success unless fail-on-changes is true; 1 an error, a refusal or a usage error; anything else
# (127: reconciler is not installed) is a failure too. So a usage error never looks like success.
set -uo pipefail

command="${INPUT_COMMAND:-plan}"
plan_file="${INPUT_PLAN_FILE:-plans/plan.json}"
work="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/reconciler-action"
mkdir -p "$work"
comment="$work/comment.md"
err="$work/stderr.txt"
: > "$comment"

output() { echo "$1=$2" >> "${GITHUB_OUTPUT:-/dev/null}"; }
summary() { cat >> "${GITHUB_STEP_SUMMARY:-/dev/null}"; }
words() {  # the shell words of $1 (quotes honoured, nothing expanded or run)
  python3 -c 'import shlex, sys; print("\n".join(shlex.split(sys.argv[1])))' "$1"
}

paths=() extra=() conn=()
if [ -n "${INPUT_PATHS:-}" ]; then mapfile -t paths < <(words "$INPUT_PATHS"); fi
if [ -n "${INPUT_ARGS:-}" ]; then mapfile -t extra < <(words "$INPUT_ARGS"); fi
if [ -n "${INPUT_REGION:-}" ]; then conn+=(--region "$INPUT_REGION"); fi
if [ -n "${INPUT_ENDPOINT_URL:-}" ]; then conn+=(--endpoint-url "$INPUT_ENDPOINT_URL"); fi
if [ -n "${INPUT_PROFILE:-}" ]; then conn+=(--profile "$INPUT_PROFILE"); fi
if [ "${INPUT_SANDBOX:-false}" = true ]; then conn+=(--sandbox); fi
if [ -n "${INPUT_SANDBOX_DIR:-}" ]; then conn+=(--sandbox-dir "$INPUT_SANDBOX_DIR"); fi
if [ ${#paths[@]} -eq 0 ] && [ "$command" != status ]; then paths=(manifests); fi

case "$command" in
  plan)     argv=(plan "${paths[@]}" "${conn[@]}" --out "$plan_file" --no-step-summary "${extra[@]}") ;;
  apply)    if [ -n "${INPUT_PLAN_FILE:-}" ]; then argv=(apply "$plan_file" "${conn[@]}" "${extra[@]}")
            else argv=(apply "${paths[@]}" "${conn[@]}" --auto-approve "${extra[@]}"); fi ;;
  show)     argv=(show "$plan_file" "${extra[@]}") ;;
  validate) argv=(validate "${paths[@]}" "${extra[@]}") ;;
  status)   argv=(status "${paths[@]}" "${conn[@]}" "${extra[@]}") ;;
  *)        echo "::error::the action's command input is '$command'; use one of plan, apply, show, validate, status"
            output exit-code 1
            exit 1 ;;
esac

echo "+ reconciler ${argv[*]}"
code=0
reconciler "${argv[@]}" 2> "$err" || code=$?
cat "$err" >&2  # (kept for the summary and the comment)
output exit-code "$code"

changes=false deferred=false destructive=false
if { [ "$command" = plan ] || [ "$command" = show ]; } && [ -f "$plan_file" ] && { [ "$code" = 0 ] || [ "$code" = 2 ]; }; then
  output plan-file "$plan_file"
  reconciler show "$plan_file" --format json > "$work/plan.json" 2>/dev/null || true
  eval "$(python3 - "$work/plan.json" <<'PY'
import json, sys
try:
    plan = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    plan = {}
if not isinstance(plan, dict):
    plan = {}
if plan.get("kind") == "fleet":  # a fleet plan: each target's plan has its own steps
    steps = [s for t in plan.get("targets") or [] for s in (t.get("plan") or {}).get("steps") or []]
else:
    steps = plan.get("steps") or []
print("changes=" + ("true" if steps else "false"))
print("deferred=" + ("true" if any(s.get("deferredUntil") for s in steps) else "false"))
print("destructive=" + ("true" if any(s.get("destructive") for s in steps) else "false"))
PY
)"
  reconciler show "$plan_file" --format markdown > "$comment" 2>/dev/null || true
elif [ "$command" = apply ] && [ "$code" = 2 ]; then
  deferred=true
fi
output changes "$changes"
output deferred "$deferred"
output destructive "$destructive"

case "$code" in
  0) meaning="success" ;;
  1) meaning="failed: an error, a refusal or a usage error (nothing unreviewed ran; see the log)" ;;
  2) if [ "$command" = apply ]; then meaning="applied; deferred steps remain: re-run after the date printed"
     else meaning="changes to review"; fi ;;
  127) meaning="reconciler is not installed (command not found)" ;;
  *) meaning="unexpected exit code" ;;
esac
if [ ! -s "$comment" ]; then
  {
    echo "### reconciler $command: exit $code ($meaning)"
    if [ -s "$err" ]; then
      echo
      echo '```'
      # shellcheck disable=SC2016  # the backticks are literal: a fence inside would end the block
      tail -n 40 "$err" | sed 's/```/`` `/g'
      echo '```'
    fi
  } > "$comment"
fi
summary < "$comment"

if [ "$code" = 0 ]; then exit 0; fi
if [ "$code" = 2 ] && { [ "$command" = plan ] || [ "$command" = apply ]; }; then
  if [ "${INPUT_FAIL_ON_CHANGES:-false}" = true ]; then
    echo "::error::reconciler $command exited 2 ($meaning), and fail-on-changes is true"
    exit 2
  fi
  echo "::notice::reconciler $command exited 2: $meaning"
  exit 0
fi
echo "::error::reconciler $command exited $code: $meaning"
if [ "$code" = 2 ]; then exit 1; fi  # 2 from any other command is not a success
exit "$code"
