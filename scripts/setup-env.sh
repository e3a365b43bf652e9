# Sourced by start.sh and test.sh: create .venv and install the project into it once,
# again only when pyproject.toml changes. Usage: . scripts/setup-env.sh EXTRAS
set -e
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
extras=${1:-dev}
python=${PYTHON:-python3}
if [ ! -x "$root/.venv/bin/python" ]; then
  echo "Creating $root/.venv ..." >&2
  "$python" -m venv "$root/.venv"
fi
. "$root/.venv/bin/activate"
stamp="$root/.venv/.installed-$extras"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
  echo "Installing inpaint-studio[$extras] and its dependencies ..." >&2
  python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
  if ! python -m pip install --quiet -e "$root[$extras]"; then
    # the training extra needs the local CPU build of torch; without it the app and its
    # tests still install, and the training smoke test says it was skipped
    echo "Could not install [$extras]; installing [dev] only." >&2
    python -m pip install --quiet -e "$root[dev]"
  fi
  touch "$stamp"
fi
