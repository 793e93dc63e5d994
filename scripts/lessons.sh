#!/usr/bin/env bash
# One command to start learning on a fresh machine: set up, then open the lessons in JupyterLab.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh lessons
exec .venv/bin/jupyter lab --ip 127.0.0.1 notebooks/ "$@"
