/** Knowledge distillation: a teacher's softened outputs train a smaller student (`kiln.distill`). */
export { distill, TEACHER_LOGITS_INPUT, DISTILLATION_METADATA_KEY, type DistillArgs, type DistillResult } from './distill.js';
export { distillationLoss, type DistillationLossOptions } from './loss.js';
export { defaultStudent, graphParameterCount, onnxParameterCount, teacherParameterCount, type DefaultStudentOptions } from './student.js';
export { adaptInput } from '../../model/input-adapter.js';
export { asOnnxModel, classifierScores, logitsReader, teacherLogits, type LogitsReader, type ClassifierSource, type ClassifierOutputKind, type TeacherLogits } from './teacher.js';
export type { ClassifierScoresOptions } from './teacher.js';
