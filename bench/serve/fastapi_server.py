"""FastAPI + PyTorch reference server for bench/serve/run.ts: the tutorial CIFAR-10 CNN with the Kiln
model's own weights, answering the KServe v2 JSON request Kiln's `/v2/models/cnn/infer` takes, written
as a Python user would write it (FastAPI's documented pattern: a pydantic request model, a plain `def`
endpoint, which FastAPI runs on its thread pool; the model in eval mode under torch.inference_mode()).
One request is one forward pass: there is no batching, as in the typical FastAPI deployment (FastAPI
and uvicorn have none; batching would have to be written by hand).

  python3 bench/serve/fastapi_server.py --weights FILE --port 8000 [--workers 1] [--threads 1]

FILE is what bench/serve/fastapi.ts writes: the Kiln model's initializers by name, the name of its output,
and one fixed input with the logits Kiln computed for it. The server checks its own logits against those
at start-up (within 1e-4) and refuses to start otherwise. Served by uvicorn with its defaults (event
loop and HTTP parser: "auto", i.e. uvloop and httptools when installed, as `pip install uvicorn[standard]`
gives) and `--workers` processes, each running PyTorch on `--threads` intra-op threads; the access log is
off (a production deployment ships its logs elsewhere, and the Kiln server it is compared with logs no
line per request). A bench-only script: PyTorch and FastAPI are never dependencies of Kiln.
"""
import argparse
import json
import os
import statistics
import sys
import time
from typing import List

import torch
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'train'))
from torch_tutorial import tutorial_cnn  # noqa: E402  (the same nn.Sequential the training bench uses)

TOLERANCE = 1e-4


def load_kiln_weights(model: torch.nn.Module, weights: dict) -> None:
    """Copies Kiln's initializers into the PyTorch layers. Kiln's graph transposes its NHWC input to
    NCHW once and runs ONNX Conv and Flatten on NCHW, so its convolution kernels are PyTorch's
    [out, in, kh, kw] and its flatten order is PyTorch's (c, h, w); its Dense kernels are [in, out]
    (Keras'), PyTorch's Linear weights [out, in]."""
    def t(name: str) -> torch.Tensor:
        w = weights[name]
        return torch.tensor(w['data'], dtype=torch.float32).reshape(w['shape'])

    convs = [m for m in model if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for layer, name in zip(convs, ['conv2d', 'conv2d_1', 'conv2d_2']):
            layer.weight.copy_(t(f'{name}/kernel'))
            layer.bias.copy_(t(f'{name}/bias'))
        linears[0].weight.copy_(t('dense/kernel').t())
        linears[0].bias.copy_(t('dense/bias'))
        linears[1].weight.copy_(t('dense_1/kernel').t())
        linears[1].bias.copy_(t('dense_1/bias'))


def build_model(weights_file: str):
    with open(weights_file) as f:
        exported = json.load(f)
    model = tutorial_cnn(3, 32)  # the served model's 32x32x3 images
    load_kiln_weights(model, exported['weights'])
    model.eval()
    check = exported['check']
    x = torch.tensor(check['input'], dtype=torch.float32).reshape(check['shape']).permute(0, 3, 1, 2)
    with torch.inference_mode():
        got = model(x).flatten()
    diff = (got - torch.tensor(check['logits'], dtype=torch.float32)).abs().max().item()
    if not diff <= TOLERANCE:
        sys.exit(f'fastapi_server.py: refusing to start: PyTorch logits differ from Kiln\'s by {diff:.3g} '
                 f'(tolerance {TOLERANCE}) on the check input of {weights_file}')
    return model, exported['output'], diff


class InferInput(BaseModel):
    name: str
    shape: List[int]
    datatype: str
    data: List[float]


class InferRequest(BaseModel):
    inputs: List[InferInput]


app = FastAPI()
# uvicorn's worker processes import this module afresh: the configuration comes in the environment.
if os.environ.get('KILN_FASTAPI_WEIGHTS'):
    torch.set_num_threads(int(os.environ['KILN_FASTAPI_THREADS']))
    MODEL, OUTPUT, CHECK_DIFF = build_model(os.environ['KILN_FASTAPI_WEIGHTS'])


@app.get('/v2/health/ready')
def ready() -> dict:
    return {'ready': True}


@app.post('/v2/models/cnn/infer')
def infer(request: InferRequest) -> dict:
    if len(request.inputs) != 1:
        raise HTTPException(400, f'expected 1 input, got {len(request.inputs)}')
    inp = request.inputs[0]
    if inp.datatype != 'FP32' or len(inp.shape) != 4 or inp.shape[1:] != [32, 32, 3]:
        raise HTTPException(400, f'expected an FP32 input of shape [N, 32, 32, 3], got {inp.datatype} {inp.shape}')
    n = inp.shape[0]
    if len(inp.data) != n * 32 * 32 * 3:
        raise HTTPException(400, f'shape {inp.shape} needs {n * 32 * 32 * 3} values, got {len(inp.data)}')
    # NHWC as Kiln (and Keras) take it, to PyTorch's NCHW.
    x = torch.tensor(inp.data, dtype=torch.float32).reshape(inp.shape).permute(0, 3, 1, 2)
    with torch.inference_mode():
        y = MODEL(x)
    return {'model_name': 'cnn', 'model_version': '1',
            'outputs': [{'name': OUTPUT, 'shape': list(y.shape), 'datatype': 'FP32', 'data': y.flatten().tolist()}]}


def stage_costs(model: torch.nn.Module, check: dict, output: str, rounds: int = 100) -> dict:
    """What one request's steps cost in this process, one at a time (median µs of the process's CPU time,
    which other load on the machine moves less than wall time, over `rounds`, the steps interleaved): the body's JSON parse (FastAPI's `await request.json()` is json.loads), pydantic's
    validation into InferRequest, the tensor's construction, the forward pass, and the reply's encoding
    (FastAPI's jsonable_encoder, then Starlette's JSONResponse json.dumps). The rest of a request's CPU
    is uvicorn, Starlette/FastAPI routing and the thread-pool hop around the endpoint."""
    from fastapi.encoders import jsonable_encoder
    body = json.dumps({'inputs': [{'name': 'input', 'shape': check['shape'], 'datatype': 'FP32', 'data': check['input']}]}).encode()
    times: dict = {'parse': [], 'validate': [], 'tensor': [], 'forward': [], 'encode': []}
    for _ in range(rounds):
        t0 = time.process_time()
        obj = json.loads(body)
        t1 = time.process_time()
        req = InferRequest.parse_obj(obj)
        t2 = time.process_time()
        inp = req.inputs[0]
        x = torch.tensor(inp.data, dtype=torch.float32).reshape(inp.shape).permute(0, 3, 1, 2)
        t3 = time.process_time()
        with torch.inference_mode():
            y = model(x)
        t4 = time.process_time()
        reply = {'model_name': 'cnn', 'model_version': '1',
                 'outputs': [{'name': output, 'shape': list(y.shape), 'datatype': 'FP32', 'data': y.flatten().tolist()}]}
        json.dumps(jsonable_encoder(reply), ensure_ascii=False, allow_nan=False, indent=None, separators=(',', ':')).encode('utf-8')
        t5 = time.process_time()
        for k, a, b in [('parse', t0, t1), ('validate', t1, t2), ('tensor', t2, t3), ('forward', t3, t4), ('encode', t4, t5)]:
            times[k].append((b - a) * 1e6)
    return {k: round(statistics.median(v)) for k, v in times.items()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('--weights', required=True)
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--workers', type=int, default=1)
    p.add_argument('--threads', type=int, default=1)
    a = p.parse_args()
    os.environ['KILN_FASTAPI_WEIGHTS'] = os.path.abspath(a.weights)
    os.environ['KILN_FASTAPI_THREADS'] = str(a.threads)
    # Check once here, so that a mismatch stops the server before it binds, with one message.
    torch.set_num_threads(a.threads)
    model, output, diff = build_model(a.weights)
    with open(a.weights) as f:
        costs = stage_costs(model, json.load(f)['check'], output)
    del model
    import importlib.util
    loop = 'uvloop' if importlib.util.find_spec('uvloop') else 'asyncio'
    http = 'httptools' if importlib.util.find_spec('httptools') else 'h11'
    import fastapi
    print(json.dumps({'msg': 'fastapi reference', 'logitsMaxDiff': diff, 'fastapi': fastapi.__version__,
                      'uvicorn': uvicorn.__version__, 'torch': torch.__version__, 'threads': a.threads,
                      'workers': a.workers, 'loop': loop, 'http': http, 'stageMicros': costs}), flush=True)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    uvicorn.run('fastapi_server:app', host='127.0.0.1', port=a.port, workers=a.workers, log_level='warning', access_log=False)


if __name__ == '__main__':
    main()
