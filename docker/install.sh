#!/bin/sh
# The datarch image's build and install steps, kept in one place: the Dockerfile runs
# them, and tests/integration/test_dockerfile.py runs the same lines in a clean
# virtualenv (no Docker engine runs where the tests do), so the recipe cannot rot
# unnoticed. `python` is whichever comes first on PATH: the image's, or the test's venv.
#
#   install.sh wheels DIR    from the current directory (the source), build the datarch
#                            wheel and a wheel of every dependency into DIR
#   install.sh install DIR   install datarch from DIR alone, no package index: the image
#                            runs exactly what was built
set -eu
usage="usage: install.sh wheels DIR | install.sh install DIR"
command=${1:?$usage}
dir=${2:?$usage}
case "$command" in
  wheels)
    python -m pip wheel --wheel-dir "$dir" .
    ;;
  install)
    python -m pip install --no-index --find-links "$dir" datarch
    # The entrypoint must resolve and import before the image is called done.
    datarch --version
    ;;
  *)
    echo "install.sh: unknown command '$command'; $usage" >&2
    exit 64
    ;;
esac
