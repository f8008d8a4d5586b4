#!/usr/bin/env bash
# Stage what scripts/gpu_check.sh needs on a lent GPU machine, in .gpu/ (git-ignored): wheels of
# the packages its image lacks (hydra-core, omegaconf, antlr4; KINDS.md lists the image's packages)
# and of nnexp itself, built from this tree, plus the MNIST IDX files. Run it here, right before
# the device call that carries .gpu:
#
#   bash scripts/gpu_stage.sh [DATA_ROOT]     # DATA_ROOT holds mnist/ (default $NNEXP_DATA, ../shared/data)
#
# The device machine runs Python 3.12 with no internet, so the wheels are pure-Python ones made
# here; nothing is downloaded there.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-${NNEXP_DATA:-../shared/data}}
python=${PYTHON:-python3}
rm -rf .gpu && mkdir -p .gpu/wheels .gpu/data/mnist
# antlr4-python3-runtime 4.9.3 (the version omegaconf 2.3 pins) is published as a source archive
# only: `pip wheel` builds its pure-Python wheel here.
"$python" -m pip wheel -q --no-deps -w .gpu/wheels hydra-core==1.3.2 omegaconf==2.3.0 antlr4-python3-runtime==4.9.3 .
cp "$root"/mnist/*-ubyte.gz .gpu/data/mnist/
ls .gpu/wheels
du -sh .gpu
