#!/usr/bin/env bash
# The install steps of deploy/Dockerfile, runnable anywhere: a fresh virtualenv, a plain
# (non-editable) `pip install .` of the project, then the two commands that prove the install
# works: `aggregator --version` and `aggregator check` on the configuration.
# The Dockerfile runs `install` in its build stage and `verify` in its final one; CI (.ci/run)
# runs both against a temporary folder, so a broken Dockerfile install fails CI without Docker.
#
# usage: deploy/install-check.sh install VENV [PROJECT_DIR]   make VENV and install into it
#        deploy/install-check.sh verify VENV CONFIG_DIR        run the installed commands
#        deploy/install-check.sh all VENV [PROJECT_DIR]        both, with PROJECT_DIR/config
set -euo pipefail

install() {
    local venv=$1 project=${2:-.}
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --upgrade pip
    # Non-editable: the venv must not depend on the source tree staying where it is.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "$project"
}

verify() {
    local venv=$1 config=$2
    "$venv/bin/aggregator" --version
    # `check` reads only the editorial files: no database, no network.
    "$venv/bin/aggregator" check --config "$config"
}

case "${1:-}" in
    install) install "$2" "${3:-.}" ;;
    verify) verify "$2" "$3" ;;
    all) install "$2" "${3:-.}"; verify "$2" "${3:-.}/config" ;;
    *) echo "usage: $0 install VENV [PROJECT_DIR] | verify VENV CONFIG_DIR | all VENV [PROJECT_DIR]" >&2
       exit 2 ;;
esac
