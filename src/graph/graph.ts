import { KilnError, formatShape } from '../errors.js';
import { Tensor, int64FromNumber, type DType } from '../tensor.js';
import { inferOutputs } from '../ops/index.js';

/** A dimension: a size, a symbolic name (the batch dimension is 'N'), or unknown. */
export type Dim = number | string | null;
/** A value's shape: one Dim per axis. */
export type Shape = Dim[];

/** An attribute value as Kiln writes it; a Tensor becomes a TENSOR attribute. */
export type AttrValue = number | string | number[] | string[] | Tensor | Graph;
/** A node's attributes by name. */
export type Attrs = Record<string, AttrValue>;
/** Attributes whose numbers are floats even when they look like integers (ONNX tells them apart). */
export type FloatAttrNames = ReadonlySet<string>;

/** A named value in the graph with its element type and (possibly partly symbolic) shape. */
export interface Value {
  /** Its name in the graph. */
  readonly name: string;
  /** Element type. */
  readonly dtype: DType;
  /** Shape as far as known; null when even the rank is unknown. */
  readonly shape: Shape | null;
}

/** One ONNX node as the builder holds it. */
export interface Node {
  /** The ONNX operator ('Conv', 'Gemm', ...). */
  opType: string;
  /** Names of its input values ('' for an omitted optional input). */
  inputs: string[];
  /** Names of its output values. */
  outputs: string[];
  /** Its attributes. */
  attrs: Attrs;
  /** The node's name. */
  name: string;
  /** The operator set's domain ('' for the standard one). */
  domain: string;
}

/**
 * An ONNX graph under construction. Every op added goes through the op registry's shape rule, so each
 * value knows its dtype and shape as soon as it exists; this is what layers, autodiff and the
 * optimization passes build on.
 */
export class Graph {
  /** The nodes, in the order added (a valid topological order). */
  readonly nodes: Node[] = [];
  /** Stored tensors (weights and constants) by name. */
  readonly initializers = new Map<string, Tensor>();
  /** The graph's inputs. */
  readonly inputs: Value[] = [];
  /** The graph's outputs. */
  readonly outputs: Value[] = [];
  /** Every value declared so far, by name. */
  readonly values = new Map<string, Value>();
  private readonly usedNames = new Set<string>();
  /** For each hint uniqueName has suffixed, the suffix its next search starts from (every smaller one is taken). */
  private readonly nextSuffix = new Map<string, number>();
  private readonly producers = new Map<string, Node>();

  /** A new, empty graph with this name. */
  constructor(
    /** The graph's name in the ONNX file. */
    readonly name = 'kiln',
  ) {}

  /**
   * A name not used yet in this graph, derived from the hint: the hint, else `hint_i` for the smallest
   * free i. Names are never freed, so each hint's search resumes where its last one stopped: an
   * unrolled recurrent layer asks for the same hints thousands of times, and probing from 1 each time
   * made building its graph quadratic in the sequence length.
   */
  uniqueName(hint: string): string {
    if (!this.usedNames.has(hint)) {
      this.usedNames.add(hint);
      return hint;
    }
    for (let i = this.nextSuffix.get(hint) ?? 1; ; i++) {
      const candidate = `${hint}_${i}`;
      if (!this.usedNames.has(candidate)) {
        this.usedNames.add(candidate);
        this.nextSuffix.set(hint, i + 1);
        return candidate;
      }
    }
  }

  private declare(value: Value): Value {
    this.usedNames.add(value.name);
    this.values.set(value.name, value);
    return value;
  }

  /** Declares a graph input. */
  input(name: string, dtype: DType, shape: Shape): Value {
    if (this.values.has(name)) throw new KilnError('INVALID_ARGUMENT', `graph already has a value named '${name}'`);
    const v = this.declare({ name, dtype, shape: [...shape] });
    this.inputs.push(v);
    return v;
  }

  /** A named constant tensor stored in the model (weights are initializers). */
  initializer(name: string, tensor: Tensor): Value {
    if (this.values.has(name)) throw new KilnError('INVALID_ARGUMENT', `graph already has a value named '${name}'`);
    this.initializers.set(name, tensor);
    return this.declare({ name, dtype: tensor.dtype, shape: [...tensor.shape] });
  }

  /** A constant with a generated name (for shapes, axes, scalars in formulas). */
  constant(tensor: Tensor, hint = 'const'): Value {
    return this.initializer(this.uniqueName(hint), tensor);
  }

  /** A scalar constant. */
  scalar(value: number, dtype: DType = 'float32'): Value {
    const data = dtype === 'int64' ? BigInt64Array.of(int64FromNumber(value)) : dtype === 'float64' ? Float64Array.of(value) : dtype === 'int32' ? Int32Array.of(value) : Float32Array.of(value);
    return this.constant(new Tensor(data as never, [], dtype), 'scalar');
  }

  /** A 1-D int64 constant (shapes, axes). */
  int64s(values: readonly number[], hint = 'ints'): Value {
    return this.constant(new Tensor(BigInt64Array.from(values, int64FromNumber), [values.length], 'int64'), hint);
  }

  /** The tensor behind a value when it is a constant known at build time, else undefined. */
  constantValue(name: string): Tensor | undefined {
    // Exporters write axes, shapes and scalars as Constant nodes as often as as initializers.
    const producer = this.producers.get(name);
    if (producer?.opType === 'Constant' && producer.attrs.value instanceof Tensor) return producer.attrs.value;
    return this.initializers.get(name);
  }

  /** The value with this name; throws if there is none. */
  value(name: string): Value {
    const v = this.values.get(name);
    if (!v) throw new KilnError('INVALID_ARGUMENT', `graph has no value named '${name}'`);
    return v;
  }

  /** The node that produces this value, if any. */
  producer(name: string): Node | undefined {
    return this.producers.get(name);
  }

  /**
   * Adds one node. Inputs are values or names ('' for an omitted optional input); outputs get fresh
   * names from the hint unless given. Returns the output values with inferred dtype and shape.
   */
  op(
    opType: string,
    inputs: readonly (Value | string)[],
    attrs: Attrs = {},
    options: { outputs?: number | string[]; name?: string; domain?: string } = {},
  ): Value[] {
    const inputNames = inputs.map((i) => (typeof i === 'string' ? i : i.name));
    for (const n of inputNames) {
      if (n !== '' && !this.values.has(n)) {
        throw new KilnError('INVALID_ARGUMENT', `${opType}: input '${n}' does not exist in the graph`);
      }
    }
    const hint = options.name ?? opType.toLowerCase();
    const outputNames =
      Array.isArray(options.outputs)
        ? options.outputs.map((n) => {
            if (this.values.has(n)) throw new KilnError('INVALID_ARGUMENT', `graph already has a value named '${n}'`);
            this.usedNames.add(n);
            return n;
          })
        : Array.from({ length: options.outputs ?? 1 }, (_, k) => this.uniqueName(k === 0 ? hint : `${hint}:${k}`));
    const inputValues = inputNames.map((n) => (n === '' ? null : this.values.get(n)!));
    const node: Node = {
      opType,
      inputs: inputNames,
      outputs: outputNames,
      attrs,
      name: this.uniqueName(`node/${hint}`),
      domain: options.domain ?? '',
    };
    const inferred = inferOutputs(node, inputValues, this);
    this.nodes.push(node);
    return outputNames.map((name, k) => {
      const info = inferred[k] ?? { dtype: 'float32' as DType, shape: null };
      const v = this.declare({ name, dtype: info.dtype, shape: info.shape });
      this.producers.set(name, node);
      return v;
    });
  }

  /**
   * Adds a node read from another tool's ONNX file with its outputs' types and shapes given (measured by
   * running the file, see model/imported-graph.ts) rather than inferred: the op may have no shape rule
   * in Kiln at all, since only ops on the path to the loss need a gradient rule. Output names are kept
   * where free and made unique otherwise; the present outputs' values are returned in order.
   */
  importNode(
    opType: string,
    inputs: readonly string[],
    attrs: Attrs,
    outputs: readonly { name: string; dtype: DType; shape: Shape | null }[],
    options: { name?: string; domain?: string } = {},
  ): Value[] {
    for (const n of inputs) {
      if (n !== '' && !this.values.has(n)) throw new KilnError('INVALID_ARGUMENT', `${opType}: input '${n}' does not exist in the graph`);
    }
    // An omitted optional output ('') stays omitted.
    const values = outputs.map((o) => (o.name === '' ? null : this.declare({ name: this.uniqueName(o.name), dtype: o.dtype, shape: o.shape })));
    const node: Node = {
      opType,
      inputs: [...inputs],
      outputs: values.map((v) => v?.name ?? ''),
      attrs,
      name: this.uniqueName(options.name || `node/${opType.toLowerCase()}`),
      domain: options.domain ?? '',
    };
    this.nodes.push(node);
    for (const v of values) if (v) this.producers.set(v.name, node);
    return values.filter((v): v is Value => v !== null);
  }

  /**
   * Fills output `index` of a node already in the graph, one its writer left off (an optional output
   * such as Dropout's mask, which a gradient rule needs), declared with the given type and shape;
   * outputs before it that are missing stay omitted ('').
   */
  addNodeOutput(node: Node, index: number, hint: string, dtype: DType, shape: Shape | null): Value {
    if (!this.nodes.includes(node)) throw new KilnError('INVALID_ARGUMENT', `graph has no node named '${node.name}'`);
    if (node.outputs[index]) throw new KilnError('INVALID_ARGUMENT', `node '${node.name}' already has output ${index} ('${node.outputs[index]}')`);
    const v = this.declare({ name: this.uniqueName(hint), dtype, shape });
    while (node.outputs.length < index) node.outputs.push('');
    node.outputs[index] = v.name;
    this.producers.set(v.name, node);
    return v;
  }

  /** Single-output shorthand for op(). */
  op1(opType: string, inputs: readonly (Value | string)[], attrs: Attrs = {}, name?: string): Value {
    return this.op(opType, inputs, attrs, name === undefined ? {} : { name })[0]!;
  }

  /** Marks a value as a graph output, optionally under a new name (through Identity). */
  output(value: Value, name?: string): Value {
    let v = value;
    if (name !== undefined && name !== value.name) {
      v = this.op('Identity', [value], {}, { outputs: [name] })[0]!;
    }
    this.outputs.push(v);
    return v;
  }

  /**
   * Replaces the node list after a rewrite pass (see passes.ts): the nodes must stay in a valid
   * topological order, and any output whose meaning changed must be re-declared with `redeclare`.
   */
  replaceNodes(nodes: readonly Node[]): void {
    this.nodes.splice(0, this.nodes.length, ...nodes);
    this.producers.clear();
    for (const n of this.nodes) for (const o of n.outputs) this.producers.set(o, n);
  }

  /** Updates a value's dtype/shape after a pass changed what computes it. */
  redeclare(value: Value): void {
    if (!this.values.has(value.name)) throw new KilnError('INVALID_ARGUMENT', `graph has no value named '${value.name}'`);
    this.values.set(value.name, value);
  }

  /** Static shape of a value, failing with a clear message when it is not fully known. */
  staticShape(value: Value): number[] {
    const s = value.shape;
    if (!s || s.some((d) => typeof d !== 'number')) {
      throw new KilnError('INVALID_SHAPE', `value '${value.name}' needs a static shape here, has ${s ? formatShape(s) : 'unknown'}`);
    }
    return s as number[];
  }
}
