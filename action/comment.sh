#!/usr/bin/env bash
# The reconciler GitHub Action's pull-request comment: one comment per pull request and key,
# updated in place on every push (found again by a hidden marker), never duplicated.
#
# Environment: GH_TOKEN (pull-requests: write), GITHUB_REPOSITORY, GITHUB_EVENT_PATH (the
# pull_request event), COMMENT_KEY (which comment: one per workflow and job by default), and the
# markdown written by run.sh. A comment that cannot be posted is a warning: the plan is in the job
# summary, and the step's result stays the command's.
set -uo pipefail

work="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/reconciler-action"
body_file="$work/comment.md"
limit=60000  # GitHub refuses comments over 65536 characters

pr=$(python3 -c 'import json, sys; print((json.load(open(sys.argv[1])).get("pull_request") or {}).get("number") or "")' \
       "${GITHUB_EVENT_PATH:-/dev/null}" 2>/dev/null || true)
if [ -z "$pr" ]; then
  echo "Not a pull request event: no comment (the result is in the job summary)."
  exit 0
fi
if [ ! -s "$body_file" ]; then
  echo "::warning::no result to comment on pull request #$pr"
  exit 0
fi

key="${COMMENT_KEY:-${GITHUB_WORKFLOW:-reconciler}/${GITHUB_JOB:-plan}}"
key="${key//--/- -}"  # a marker never closes its HTML comment early
export RECONCILER_MARKER="<!-- reconciler-action: $key -->"
{
  echo "$RECONCILER_MARKER"
  if [ "$(wc -c < "$body_file")" -gt "$limit" ]; then
    head -c "$limit" "$body_file"
    echo
    echo
    echo "_The plan is longer than a comment can be: read it whole in the job summary of run ${GITHUB_RUN_ID:-?}._"
  else
    cat "$body_file"
  fi
  echo
  echo "<sub>${GITHUB_WORKFLOW:-reconciler} · run ${GITHUB_RUN_ID:-?} · commit ${GITHUB_SHA:-?}</sub>"
} > "$work/comment-body.md"

existing=$(gh api --paginate "repos/$GITHUB_REPOSITORY/issues/$pr/comments" \
             --jq '.[] | select(.body | contains(env.RECONCILER_MARKER)) | .id' | head -n 1) || {
  echo "::warning::cannot list the comments of pull request #$pr (does the job have pull-requests: write?)"
  exit 0
}
if [ -n "$existing" ]; then
  gh api -X PATCH "repos/$GITHUB_REPOSITORY/issues/comments/$existing" -F "body=@$work/comment-body.md" > /dev/null \
    && echo "Updated comment $existing on pull request #$pr" \
    || echo "::warning::cannot update comment $existing on pull request #$pr"
else
  gh api -X POST "repos/$GITHUB_REPOSITORY/issues/$pr/comments" -F "body=@$work/comment-body.md" > /dev/null \
    && echo "Commented on pull request #$pr" \
    || echo "::warning::cannot comment on pull request #$pr (does the job have pull-requests: write?)"
fi
exit 0
