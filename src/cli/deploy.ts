import { KilnError } from '../errors.js';
import { deployKServe } from '../serve/deploy/kserve.js';
import { deployTriton } from '../serve/deploy/triton.js';
import { numberOption, stringOption } from './args.js';
import type { Command } from './command.js';

export const deployCommand: Command = {
  name: 'deploy',
  summary: 'Write what runs a model repository on KServe (Dockerfile, ServingRuntime, InferenceService) or Triton (a model repository with config.pbtxt)',
  usage: 'kiln deploy kserve --model-repository DIR --out k8s/ [--name NAME] [--image IMAGE] [--storage-uri URI] | kiln deploy triton --model-repository DIR --out triton/',
  options: [
    { name: 'model-repository', type: 'string', description: "the Kiln model repository: DIR/<model>/<version>/model.onnx (+ config.json)" },
    { name: 'out', type: 'string', description: 'the directory to write (must not exist, or be empty); written all or nothing' },
    { name: 'name', type: 'string', description: 'kserve: the InferenceService name (default: from the repository directory)' },
    { name: 'image', type: 'string', description: 'kserve: the image the Dockerfile builds (default kiln-serve:<version>)' },
    { name: 'storage-uri', type: 'string', description: "kserve: where KServe fetches the repository from (s3://, gs://, pvc://...; default pvc://<name>-models/)" },
    { name: 'min-replicas', type: 'number', integer: true, min: 0, description: 'kserve: fewest replicas (default 1; 0 scales to zero)' },
    { name: 'max-replicas', type: 'number', integer: true, min: 1, description: 'kserve: most replicas (default 4)' },
    { name: 'scale-target', type: 'number', integer: true, min: 1, description: 'kserve: concurrent requests per replica the autoscaler aims for (default 64)' },
  ],
  async run({ positionals, options }, out) {
    const target = positionals[0];
    if (positionals.length !== 1 || (target !== 'kserve' && target !== 'triton')) {
      throw new KilnError('INVALID_ARGUMENT', `kiln deploy: give the target, kserve or triton${positionals.length ? `, got ${positionals.join(' ')}` : ''}`);
    }
    const modelRepository = stringOption(options, 'model-repository');
    const dir = stringOption(options, 'out');
    if (!modelRepository || !dir) throw new KilnError('INVALID_ARGUMENT', 'kiln deploy: give --model-repository DIR and --out DIR');
    if (target === 'triton') {
      for (const o of ['name', 'image', 'storage-uri', 'min-replicas', 'max-replicas', 'scale-target']) {
        if (options[o] !== undefined) throw new KilnError('INVALID_ARGUMENT', `kiln deploy triton: --${o} is a kserve option`);
      }
    }
    const result =
      target === 'triton'
        ? await deployTriton({ modelRepository, out: dir })
        : await deployKServe({
            modelRepository,
            out: dir,
            name: stringOption(options, 'name'),
            image: stringOption(options, 'image'),
            storageUri: stringOption(options, 'storage-uri'),
            minReplicas: numberOption(options, 'min-replicas'),
            maxReplicas: numberOption(options, 'max-replicas'),
            scaleTarget: numberOption(options, 'scale-target'),
          });
    for (const file of result.files) out(`wrote ${file}`);
    for (const note of result.notes) out(`note: ${note}`);
    if (target === 'kserve') out(`next: put the Kiln package tarball in ${dir} as kiln.tgz, docker build and push the image, kubectl apply -f ${dir}`);
    else out(`next: tritonserver --model-repository ${dir}`);
    return 0;
  },
};
