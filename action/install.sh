#!/usr/bin/env bash
# The reconciler GitHub Action's install step: reconciler from the action's own checkout (the
# version the workflow pinned in `uses:`), from a pip requirement, or none ("skip": already there).
set -euo pipefail
spec="${INPUT_INSTALL:-}"
if [ "$spec" = skip ]; then
  command -v reconciler > /dev/null || { echo "::error::install is 'skip' but reconciler is not on PATH"; exit 1; }
elif [ -z "$spec" ]; then
  python3 -m pip install --disable-pip-version-check "${GITHUB_ACTION_PATH:?}"
else
  python3 -m pip install --disable-pip-version-check "$spec"
fi
reconciler --version
