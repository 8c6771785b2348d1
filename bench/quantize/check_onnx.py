"""onnx.checker.check_model(full_check=True) on each .onnx file given, printing one JSON line per file:
whether it passed (or the checker's message), its opsets, and its input and output names with their
declared shapes. Used by bench/quantize/any-onnx.ts on every model it writes. onnx 1.12 (Debian's
python3-onnx) knows opsets up to 17."""
import json
import sys

import onnx


def dims(value):
    shape = value.type.tensor_type.shape
    return [d.dim_param or d.dim_value for d in shape.dim] if value.type.tensor_type.HasField('shape') else None


for path in sys.argv[1:]:
    model = onnx.load(path)
    try:
        onnx.checker.check_model(model, full_check=True)
        error = None
    except Exception as e:  # the checker's own exception types differ between onnx versions
        error = str(e).strip().splitlines()[0]
    print(json.dumps({
        'file': path,
        'ok': error is None,
        'error': error,
        'onnx': onnx.__version__,
        'opsets': {o.domain or 'ai.onnx': o.version for o in model.opset_import},
        'inputs': [[v.name, dims(v)] for v in model.graph.input],
        'outputs': [[v.name, dims(v)] for v in model.graph.output],
    }))
