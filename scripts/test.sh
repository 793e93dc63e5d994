#!/usr/bin/env bash
# One command for the whole test suite on a fresh machine: set up, lint, type-check, test.
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -k throttler
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh dev,bench

# System packages some tests drive (they skip with a reason where a package is absent).  Installed
# with apt-get when we are root and it is missing -- as on CI's clean machine.
system_packages=(redis-server chromium)
missing=()
for pkg in "${system_packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test: installing ${missing[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "test: ${missing[*]} not installed (not root): the tests that need them will be skipped"
  fi
fi

echo "test: ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check . >/dev/null || { .venv/bin/ruff format --check .; exit 1; }
echo "test: mypy"
.venv/bin/mypy
echo "test: pytest"
.venv/bin/python -m pytest "$@"
