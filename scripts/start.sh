#!/usr/bin/env bash
# Set up on first use, then open the editor on the bundled sample photo (or on "$@").
set -e
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/scripts/setup-env.sh" dev
if [ $# -eq 0 ]; then set -- "$root/resources/sample.png"; fi
exec inpaint-studio "$@"
