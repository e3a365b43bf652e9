#!/usr/bin/env bash
# Set up on first use, then run the whole test suite (offscreen Qt).
set -e
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/scripts/setup-env.sh" dev,train
cd "$root"
export QT_QPA_PLATFORM=offscreen
exec python -m pytest -q -p no:cacheprovider "$@"
