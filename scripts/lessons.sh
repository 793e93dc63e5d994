#!/usr/bin/env bash
# One command to start learning on a fresh machine: set up, then open the lessons in JupyterLab.
# Extra arguments go to jupyter lab (e.g. --port 8890 --no-browser).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh lessons
extra=()
if [ "$(id -u)" = 0 ]; then
  extra+=(--allow-root)  # Jupyter refuses to start as root without it (containers, CI machines)
fi
exec .venv/bin/jupyter lab --ip 127.0.0.1 "${extra[@]}" notebooks/ "$@"
