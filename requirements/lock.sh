#!/usr/bin/env bash
# Refresh the lock files from pyproject.toml (needs uv: `pip install uv`):
#   bash requirements/lock.sh                          # add or drop what pyproject.toml changed
#   bash requirements/lock.sh --upgrade                # every package to its newest version
#   bash requirements/lock.sh --upgrade-package NAME   # one package
# Pins already in the files are kept unless upgraded. runtime.txt is what the image installs
# (`pip install .`'s dependencies); test.txt adds the `test` extra under the same pins and is
# what .ci/run installs. Both carry hashes: pip refuses a download that does not match.
set -euo pipefail
cd "$(dirname "$0")/.."
common=(
    --python-version 3.11 --universal --generate-hashes --quiet
    --custom-compile-command "bash requirements/lock.sh"
)
uv pip compile pyproject.toml "${common[@]}" "$@" -o requirements/runtime.txt
uv pip compile pyproject.toml --extra test -c requirements/runtime.txt "${common[@]}" "$@" \
    -o requirements/test.txt
