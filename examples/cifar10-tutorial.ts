/**
 * The Keras / TensorFlow CIFAR-10 CNN tutorial (tensorflow.org/tutorials/images/cnn), translated
 * line by line: each Python line is the comment above the Kiln line that does the same.
 *
 *     npx kiln data fetch cifar10                      # once: 162 MB into ~/.cache/kiln/datasets/cifar10
 *     node dist/examples/cifar10-tutorial.js [CIFAR_DIR] [--epochs 10] [--out cifar10_cnn.onnx]
 *
 * CIFAR_DIR defaults to where `kiln data fetch cifar10` puts the data set.
 */
import * as kiln from 'kiln';

function usage(): string {
  return 'usage: node dist/examples/cifar10-tutorial.js [CIFAR_DIR] [--epochs N] [--out FILE]';
}

/** The few options this script takes; anything else is a mistake worth stopping for. */
function parseCommandLine(argv: string[]): { cifarDir: string; epochs: number; out: string } {
  let cifarDir: string | undefined;
  let epochs = 10;
  let out = 'cifar10_cnn.onnx';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--epochs') epochs = Number(argv[++i]);
    else if (arg === '--out') out = argv[++i] ?? '';
    else if (!arg.startsWith('--') && cifarDir === undefined) cifarDir = arg;
    else throw new Error(`unexpected argument '${arg}'\n${usage()}`);
  }
  if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`--epochs expects a positive integer\n${usage()}`);
  if (out === '') throw new Error(`--out expects a file name\n${usage()}`);
  return { cifarDir: cifarDir ?? kiln.datasets.defaultDatasetDir('cifar10'), epochs, out };
}

async function loadCifar10(dir: string): Promise<kiln.datasets.ImageDataset> {
  try {
    return await kiln.datasets.cifar10(dir);
  } catch (error) {
    if (error instanceof kiln.KilnError && error.code === 'FILE_NOT_FOUND') {
      console.error(`CIFAR-10 was not found in ${dir} (${error.message}).`);
      console.error('Fetch it (162 MB, checked against its published SHA-256) with:');
      console.error('    npx kiln data fetch cifar10');
      console.error('or pass the directory holding cifar-10-batches-bin/ (or the .tar.gz itself) as the first argument.');
      process.exit(1);
    }
    throw error;
  }
}

async function main(): Promise<void> {
  const { cifarDir, epochs, out } = parseCommandLine(process.argv.slice(2));

  // (train_images, train_labels), (test_images, test_labels) = datasets.cifar10.load_data()
  const { train: { images: trainImages, labels: trainLabels }, test: { images: testImages, labels: testLabels } } = await loadCifar10(cifarDir);

  // # Normalize pixel values to be between 0 and 1
  // train_images, test_images = train_images / 255.0, test_images / 255.0
  //   Nothing to translate: Kiln's loaders already return float32 pixels divided by 255.

  // class_names = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']
  const classNames = kiln.datasets.CIFAR10_CLASS_NAMES;
  console.log(`${trainImages.shape[0]} training and ${testImages.shape[0]} test images of ${classNames.length} classes: ${classNames.join(', ')}`);

  // model = models.Sequential()
  const model = kiln.sequential();
  // model.add(layers.Conv2D(32, (3, 3), activation='relu', input_shape=(32, 32, 3)))
  model.add(kiln.layers.conv2d({ filters: 32, kernelSize: [3, 3], activation: 'relu', inputShape: [32, 32, 3] }));
  // model.add(layers.MaxPooling2D((2, 2)))
  model.add(kiln.layers.maxPooling2d({ poolSize: [2, 2] }));
  // model.add(layers.Conv2D(64, (3, 3), activation='relu'))
  model.add(kiln.layers.conv2d({ filters: 64, kernelSize: [3, 3], activation: 'relu' }));
  // model.add(layers.MaxPooling2D((2, 2)))
  model.add(kiln.layers.maxPooling2d({ poolSize: [2, 2] }));
  // model.add(layers.Conv2D(64, (3, 3), activation='relu'))
  model.add(kiln.layers.conv2d({ filters: 64, kernelSize: [3, 3], activation: 'relu' }));

  // model.add(layers.Flatten())
  model.add(kiln.layers.flatten());
  // model.add(layers.Dense(64, activation='relu'))
  model.add(kiln.layers.dense({ units: 64, activation: 'relu' }));
  // model.add(layers.Dense(10))
  model.add(kiln.layers.dense({ units: 10 }));

  // model.summary()
  model.summary();

  // model.compile(optimizer='adam',
  //               loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
  //               metrics=['accuracy'])
  model.compile({ optimizer: 'adam', loss: kiln.losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });

  // history = model.fit(train_images, train_labels, epochs=10,
  //                     validation_data=(test_images, test_labels))
  const history = await model.fit(trainImages, trainLabels, { epochs, validationData: [testImages, testLabels] });

  // test_loss, test_acc = model.evaluate(test_images,  test_labels, verbose=2)
  const { loss: testLoss, accuracy: testAcc } = await model.evaluate(testImages, testLabels);

  // print(test_acc)
  console.log(`Test loss: ${testLoss!.toFixed(4)} - test accuracy: ${testAcc!.toFixed(4)} (final val_accuracy ${history.history.val_accuracy?.at(-1)?.toFixed(4)})`);

  // model.save('cifar10_cnn.keras')
  await model.save(out);
  console.log(`Saved ${out}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
});
