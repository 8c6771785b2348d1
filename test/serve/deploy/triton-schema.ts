/*
 * The part of Triton's model configuration (ModelConfig, model_config.proto in
 * triton-inference-server/common) that `kiln deploy triton` writes, declared here from its
 * documentation with Triton's message, field and enum names and numbers, for parsing config.pbtxt
 * against it in the tests.
 */
import protobuf from 'protobufjs';

const PROTO = `
syntax = "proto3";
package inference;
enum DataType {
  TYPE_INVALID = 0; TYPE_BOOL = 1; TYPE_UINT8 = 2; TYPE_UINT16 = 3; TYPE_UINT32 = 4; TYPE_UINT64 = 5;
  TYPE_INT8 = 6; TYPE_INT16 = 7; TYPE_INT32 = 8; TYPE_INT64 = 9; TYPE_FP16 = 10; TYPE_FP32 = 11;
  TYPE_FP64 = 12; TYPE_STRING = 13; TYPE_BF16 = 14;
}
message ModelInstanceGroup {
  enum Kind { KIND_AUTO = 0; KIND_GPU = 1; KIND_CPU = 2; KIND_MODEL = 3; }
  string name = 1;
  Kind kind = 4;
  int32 count = 2;
  repeated int32 gpus = 3;
  repeated string profile = 5;
  bool passive = 7;
  string host_policy = 9;
}
message ModelTensorReshape { repeated int64 shape = 1; }
message ModelInput {
  enum Format { FORMAT_NONE = 0; FORMAT_NHWC = 1; FORMAT_NCHW = 2; }
  string name = 1;
  DataType data_type = 2;
  Format format = 3;
  repeated int64 dims = 4;
  ModelTensorReshape reshape = 5;
  bool is_shape_tensor = 6;
  bool allow_ragged_batch = 7;
  bool optional = 8;
}
message ModelOutput {
  string name = 1;
  DataType data_type = 2;
  repeated int64 dims = 3;
  ModelTensorReshape reshape = 5;
  string label_filename = 4;
  bool is_shape_tensor = 6;
}
message ModelVersionPolicy {
  message Latest { uint32 num_versions = 1; }
  message All {}
  message Specific { repeated int64 versions = 1; }
  oneof policy_choice { Latest latest = 1; All all = 2; Specific specific = 3; }
}
message ModelQueuePolicy {
  enum TimeoutAction { REJECT = 0; DELAY = 1; }
  TimeoutAction timeout_action = 1;
  uint64 default_timeout_microseconds = 2;
  bool allow_timeout_override = 3;
  uint32 max_queue_size = 4;
}
message ModelDynamicBatching {
  repeated int32 preferred_batch_size = 1;
  uint64 max_queue_delay_microseconds = 2;
  bool preserve_ordering = 3;
  uint64 priority_levels = 4;
  uint64 default_priority_level = 5;
  ModelQueuePolicy default_queue_policy = 6;
}
message ModelParameter { string string_value = 1; }
message ModelConfig {
  string name = 1;
  string platform = 2;
  string backend = 17;
  ModelVersionPolicy version_policy = 3;
  int32 max_batch_size = 4;
  repeated ModelInput input = 5;
  repeated ModelOutput output = 6;
  oneof scheduling_choice { ModelDynamicBatching dynamic_batching = 11; }
  repeated ModelInstanceGroup instance_group = 7;
  string default_model_filename = 8;
  map<string, ModelParameter> parameters = 14;
}
`;

const root = protobuf.parse(PROTO, { keepCase: true }).root;
root.resolveAll();
export const ModelConfig = root.lookupType('inference.ModelConfig');
