#!/usr/bin/env bash
# Creates the Python virtual environment of the end-to-end tests and the load generator:
#   bash scripts/test_venv.sh VENV_DIR
# pip-installs the exact versions pinned in tests/e2e/requirements.txt. Idempotent and quick on re-runs: it does
# nothing when VENV_DIR/.ready records the same requirements and Python. Safe to run concurrently (ctest -j): the
# second caller waits on a lock beside VENV_DIR and then finds the venv ready.
set -euo pipefail

if (($# != 1)); then
  echo "usage: bash scripts/test_venv.sh VENV_DIR" >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
requirements="$root/tests/e2e/requirements.txt"
python=${GLM4_PYTHON:-python3}
if [[ ! -f "$requirements" ]]; then
  echo "test_venv: missing $requirements" >&2
  exit 1
fi
venv=$1
mkdir -p "$(dirname "$venv")"
venv=$(cd "$(dirname "$venv")" && pwd)/$(basename "$venv")

# What the venv must match: the requirements file and the interpreter that makes it.
stamp="$(sha256sum <"$requirements" | cut -d' ' -f1) $("$python" -c 'import sys; print(sys.version.split()[0])') $(command -v "$python")"

is_ready() { [[ -x "$venv/bin/python" && -f "$venv/.ready" && "$(cat "$venv/.ready")" == "$stamp" ]]; }

is_ready && exit 0

exec 9>"$venv.lock"
if ! flock -w 900 9; then
  echo "test_venv: timed out waiting for the lock $venv.lock" >&2
  exit 1
fi
is_ready && exit 0  # another caller made it while we waited

echo "test_venv: creating $venv" >&2
rm -rf "$venv"
"$python" -m venv "$venv"
PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install --quiet --no-input -r "$requirements"
"$venv/bin/python" -c 'import openai, pytest, httpx' # fails loudly if the install is unusable
printf '%s\n' "$stamp" >"$venv/.ready"
echo "test_venv: ready" >&2
