/* Importing this module registers every operator Kiln emits (shape rules and gradient rules). */
import './elementwise.js';
import './activation.js';
import './conv.js';
import './pool.js';
import './matmul.js';
import './shape.js';
import './reduce.js';
import './normalization.js';
import './quantization.js';
import './constant.js';
