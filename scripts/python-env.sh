# Sourced by the scripts here: sets PY (the project's .venv python, else python3 with src/ on PYTHONPATH)
# and makes Sionna importable, from .whl/ (wheels carried to a machine without a package registry; see
# docs/gpu.md) when it is not installed.
PY=python3
[[ -x .venv/bin/python ]] && PY=.venv/bin/python
if ! $PY -c "import sionna.phy" 2>/dev/null; then
  if compgen -G ".whl/*.whl" >/dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 2
    export PYTHONPATH=/tmp/site
  else
    echo "Sionna is not importable and no .whl/ folder holds its wheel (see docs/gpu.md)" >&2
    exit 2
  fi
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD/src" PYTHONUNBUFFERED=1
