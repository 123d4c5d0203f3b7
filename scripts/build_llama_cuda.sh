#!/usr/bin/env bash
# Rebuild llama-cpp-python with CUDA so ragkit's llamacpp generator can offload layers to an NVIDIA GPU.
#
#   scripts/build_llama_cuda.sh            # architecture from nvidia-smi (e.g. 90 on H100), else 90
#   CUDA_ARCH=80 scripts/build_llama_cuda.sh
#   LLAMA_CPP_VERSION=0.3.36 scripts/build_llama_cuda.sh
#
# Needs: the CUDA toolkit (nvcc, cuBLAS headers and libraries) matching the installed driver, cmake, a C++
# compiler, and network access to PyPI for the source distribution. See docs/local_models.md.
set -euo pipefail

PYTHON="${PYTHON:-python3}"

command -v nvcc >/dev/null 2>&1 || {
  for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
    if [ -x "$d/nvcc" ]; then export PATH="$d:$PATH"; break; fi
  done
}
if ! command -v nvcc >/dev/null 2>&1; then
  echo "error: nvcc not found; install the CUDA toolkit (e.g. apt-get install cuda-toolkit-12-4) or put it on PATH" >&2
  exit 1
fi
echo "nvcc: $(nvcc --version | tail -n 1)"

if [ -z "${CUDA_ARCH:-}" ]; then
  # compute_cap is "9.0" on H100/H200, "8.0" on A100, "8.9" on L4/RTX 40xx.
  CUDA_ARCH="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d '. ' || true)"
  CUDA_ARCH="${CUDA_ARCH:-90}"
fi
echo "CMAKE_CUDA_ARCHITECTURES=${CUDA_ARCH}"

SPEC="llama-cpp-python${LLAMA_CPP_VERSION:+==${LLAMA_CPP_VERSION}}"
set -x
CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCH} ${EXTRA_CMAKE_ARGS:-}" \
FORCE_CMAKE=1 \
  "$PYTHON" -m pip install --no-binary llama-cpp-python --no-cache-dir --force-reinstall --no-deps "$SPEC"
set +x

"$PYTHON" - <<'PY'
import llama_cpp

ok = bool(llama_cpp.llama_supports_gpu_offload())
print(f"llama-cpp-python {llama_cpp.__version__}: GPU offload {'available' if ok else 'NOT available'}")
raise SystemExit(0 if ok else 1)
PY
