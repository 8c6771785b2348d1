#!/usr/bin/env bash
# The benchmarks' outside references, from Debian (never dependencies of Kiln itself):
#   python3-torch, libopenblas0-pthread  PyTorch, the training-speed reference (bench/train)
#   python3-torchvision                  torchvision's architectures, exported and trained by bench/any-onnx/torchvision.ts
#   wrk                                  the HTTP load generator of bench/serve (else it falls back to autocannon)
#   nghttp2-client                       h2load, the gRPC load generator of bench/serve/request-cost (else a node:http2 client)
#   dataset-fashion-mnist                the data of bench/train, bench/distill, bench/prune, bench/any-onnx
#   python3-onnx                         reads and checks the PyTorch-exported fixtures (test/fixtures/exported/make_fixtures.py, bench/any-onnx)
#   chromium                             the browser of bench/browser (driven by playwright-core, which downloads no browser)
#   python3-fastapi, python3-uvicorn     the FastAPI + PyTorch reference server of bench/serve/run.ts (fastapi_server.py)
#   python3-uvloop, python3-httptools    uvicorn's fast event loop and HTTP parser, which its defaults pick when installed
#                                        (what `pip install uvicorn[standard]`, FastAPI's documented install, brings)
set -euo pipefail
packages=(python3-torch python3-torchvision python3-onnx libopenblas0-pthread wrk nghttp2-client dataset-fashion-mnist chromium python3-fastapi python3-uvicorn python3-uvloop python3-httptools)
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}"
