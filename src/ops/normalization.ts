import { defineOp, requireInput } from '../graph/registry.js';

/*
 * BatchNormalization in inference form (running statistics as inputs). Training-mode batch norm is
 * composed by the layer from ReduceMean/Sub/Mul/Sqrt, so autodiff differentiates through the batch
 * statistics with the generic rules; this rule serves fine-tuning with frozen statistics.
 */
defineOp({
  type: 'BatchNormalization',
  nonDifferentiableInputs: [3, 4],
  infer: (inputs) => {
    const x = requireInput(inputs, 0, 'BatchNormalization');
    return [{ dtype: x.dtype, shape: x.shape }];
  },
  gradient: ({ graph, node, inputs: [x, scale, , mean, variance], gradOutputs: [dy] }) => {
    const eps = typeof node.attrs.epsilon === 'number' ? node.attrs.epsilon : 1e-5;
    const rank = x!.shape!.length;
    const channelShape = graph.int64s([1, -1, ...Array(rank - 2).fill(1)], 'shape');
    const asChannel = (v: typeof x) => graph.op1('Reshape', [v!, channelShape]);
    const invStd = graph.op1('Reciprocal', [graph.op1('Sqrt', [graph.op1('Add', [variance!, graph.scalar(eps)])])]);
    const xhat = graph.op1('Mul', [graph.op1('Sub', [x!, asChannel(mean)]), asChannel(invStd)]);
    const axes = graph.int64s([0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)], 'axes');
    const dx = graph.op1('Mul', [dy!, asChannel(graph.op1('Mul', [scale!, invStd]))]);
    const dScale = graph.op1('ReduceSum', [graph.op1('Mul', [dy!, xhat]), axes], { keepdims: 0 });
    const dBias = graph.op1('ReduceSum', [dy!, axes], { keepdims: 0 });
    return [dx, dScale, dBias, null, null];
  },
});

defineOp({
  type: 'Dropout',
  nonDifferentiableInputs: [1, 2],
  infer: (inputs) => {
    const x = requireInput(inputs, 0, 'Dropout');
    return [
      { dtype: x.dtype, shape: x.shape },
      { dtype: 'bool', shape: x.shape },
    ];
  },
  /*
   * Kept units were scaled by 1/(1-ratio) in the forward pass; their gradient is scaled alike. Without
   * training_mode, or with it false, ONNX Dropout is the identity (its mask is all ones), so there the
   * gradient must pass unscaled; scaling it by 1/(1-ratio) regardless made it 1/(1-ratio) too large.
   */
  gradient: ({ graph, inputs: [, ratio, training], outputs: [, mask], gradOutputs: [dy] }) => {
    const mode = training ? graph.constantValue(training.name) : undefined;
    if (!training || (mode && !Number(mode.data[0]))) return [dy!, null, null];
    const r = ratio ? graph.constantValue(ratio.name) : undefined;
    // ratio defaults to 0.5 (ONNX); a ratio computed at run time is read at run time.
    const scale = ratio && !r ? graph.op1('Reciprocal', [graph.op1('Sub', [graph.scalar(1), ratio])]) : graph.scalar(1 / (1 - (r ? Number(r.data[0]) : 0.5)));
    const keep = graph.op1('Cast', [mask!], { to: 1 });
    const scaled = graph.op1('Mul', [dy!, graph.op1('Mul', [keep, scale])]);
    // training_mode fed at run time: scale only when it is true.
    return [mode ? scaled : graph.op1('Where', [training, scaled, dy!]), null, null];
  },
});
