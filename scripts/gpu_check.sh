#!/usr/bin/env bash
# The GPU check (issue 17), one command on a lent GPU machine, a few minutes in all:
#   1. the GPU tests (tests/test_gpu.py: device data, bf16, channels_last, batched stacks on CUDA; and
#      tests/test_batched_math.py's: the batched L-BFGS-B on CUDA against its CPU run);
#   2. scripts/bench_mnist.py: a plain loop's images/s and nnexp's epoch against it;
#   3. scripts/bench_batched.py with 1, 16, 64 and 256 members;
#   4. scripts/bench_mnist.py --time-to-99: experiment=mnist_fast, its training time and accuracy.
# Stage first, here: `bash scripts/gpu_stage.sh`. Then the device call carries .gpu and runs
#   bash scripts/gpu_check.sh
# Everything it prints is also written to $OUT/gpu_check.log (or ./gpu_check.log without $OUT).
set -uo pipefail
cd "$(dirname "$0")/.."
log=${OUT:-.}/gpu_check.log
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/nnexp-site .gpu/wheels/*.whl || exit 1
# The staged nnexp must be this tree's: a wheel staged before an edit would measure old code.
site=/tmp/nnexp-site
if ! { diff -rq -x __pycache__ -x configs -x hydra_plugin nnexp $site/nnexp && diff -rq -x __pycache__ configs $site/nnexp/configs &&
       diff -rq -x __pycache__ nnexp/hydra_plugin $site/hydra_plugins/nnexp_launcher; } >/dev/null; then
  echo "gpu_check: .gpu/wheels holds another nnexp than this tree: run 'bash scripts/gpu_stage.sh' again before the device call" >&2
  exit 1
fi
export PYTHONPATH=/tmp/nnexp-site NNEXP_DATA=$PWD/.gpu/data PYTHONUNBUFFERED=1
{
  nvidia-smi -L
  python3 -c "import torch, pytorch_lightning as pl; print('torch', torch.__version__, 'lightning', pl.__version__, torch.cuda.get_device_name())"
  # -P: not the checkout's nnexp/ (cwd) but the installed one, which has nnexp.configs
  echo "== 1. GPU tests"; python3 -P -m pytest -q -o addopts="" -p no:cacheprovider -m gpu tests/test_gpu.py tests/test_batched_math.py  # serially: addopts asks for xdist
  echo "== 2. bench_mnist.py"; python3 scripts/bench_mnist.py --device cuda --skip-accuracy
  echo "== 3. bench_batched.py"; python3 scripts/bench_batched.py --device cuda --members 1,16,64,256
  echo "== 4. bench_mnist.py --time-to-99"; python3 scripts/bench_mnist.py --device cuda --time-to-99 --seeds 3
} 2>&1 | tee "$log"
