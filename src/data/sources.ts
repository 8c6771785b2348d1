/**
 * Where the data sets Kiln can fetch live, and the checksums their files must match.
 *
 * The dataset authors publish MD5 sums only (CIFAR-10 on its page, Fashion-MNIST in its README,
 * MNIST through torchvision's mirror table); the SHA-256 sums and sizes are the ones TensorFlow
 * Datasets records for the same files (tensorflow_datasets/url_checksums/{cifar10,mnist,
 * fashion_mnist}.txt). A file must match both, so one mistyped sum cannot let a wrong file through.
 *
 * CIFAR-10's page lists c58f30108f718f92721af3b95e74349a too: that is the Python pickle archive,
 * not this binary one. Debian's dataset-fashion-mnist package recompresses its files, so they hold
 * the same images but do not match these sums; Kiln reads them where Debian puts them instead.
 */

/** One file of a data set and the checksums it must match. */
export interface DatasetFile {
  /** The file's name at the source and in the data set directory. */
  name: string;
  /** Exact size in bytes, when known: the progress total, and a sanity check before hashing. */
  bytes?: number;
  /** SHA-256 the file must match, hex. */
  sha256?: string;
  /** MD5 the file must match, hex (the sum the data set's authors publish). */
  md5?: string;
}

/** Where a data set's files are downloaded from, and what they must be. */
export interface DatasetSource {
  /** URL of the folder holding the files; each file's URL is this plus its name. */
  baseUrl: string;
  /** The files, with their sizes and checksums. */
  files: readonly DatasetFile[];
}

/** The data sets `fetchDataset` (`kiln data fetch`) downloads. */
export const FETCHABLE_DATASETS = ['cifar10', 'mnist', 'fashion-mnist'] as const;
/** 'cifar10', 'mnist' or 'fashion-mnist'. */
export type FetchableDataset = (typeof FETCHABLE_DATASETS)[number];

/** Whether `fetchDataset` knows this name. */
export function isFetchableDataset(name: string): name is FetchableDataset {
  return (FETCHABLE_DATASETS as readonly string[]).includes(name);
}

/** The canonical address, files, sizes and checksums of each fetchable data set. */
export const DATASET_SOURCES: Readonly<Record<FetchableDataset, DatasetSource>> = {
  cifar10: {
    baseUrl: 'https://www.cs.toronto.edu/~kriz/',
    files: [
      {
        name: 'cifar-10-binary.tar.gz',
        bytes: 170_052_171,
        sha256: 'c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd',
        md5: 'c32a1d4ab5d03f1284b67883e8d87530',
      },
    ],
  },
  // The mirror torchvision uses since yann.lecun.com stopped serving the files; same bytes.
  mnist: {
    baseUrl: 'https://ossci-datasets.s3.amazonaws.com/mnist/',
    files: [
      {
        name: 'train-images-idx3-ubyte.gz',
        bytes: 9_912_422,
        sha256: '440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609',
        md5: 'f68b3c2dcbeaaa9fbdd348bbdeb94873',
      },
      {
        name: 'train-labels-idx1-ubyte.gz',
        bytes: 28_881,
        sha256: '3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c',
        md5: 'd53e105ee54ea40749a09fcbcd1e9432',
      },
      {
        name: 't10k-images-idx3-ubyte.gz',
        bytes: 1_648_877,
        sha256: '8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6',
        md5: '9fb629c4189551a2d022fa330f9573f3',
      },
      {
        name: 't10k-labels-idx1-ubyte.gz',
        bytes: 4_542,
        sha256: 'f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6',
        md5: 'ec29112dd5afa0611ce80d1b7f02629c',
      },
    ],
  },
  'fashion-mnist': {
    baseUrl: 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
    files: [
      {
        name: 'train-images-idx3-ubyte.gz',
        bytes: 26_421_880,
        sha256: '3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84',
        md5: '8d4fb7e6c68d591d4c3dfef9ec88bf0d',
      },
      {
        name: 'train-labels-idx1-ubyte.gz',
        bytes: 29_515,
        sha256: 'a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845',
        md5: '25c81989df183df01b3e8a0aad5dffbe',
      },
      {
        name: 't10k-images-idx3-ubyte.gz',
        bytes: 4_422_102,
        sha256: '346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073',
        md5: 'bef4ecab320f06d8554ea6380940ec79',
      },
      {
        name: 't10k-labels-idx1-ubyte.gz',
        bytes: 5_148,
        sha256: '67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5',
        md5: 'bb300cfdad3c16e7a12a480ee83cd310',
      },
    ],
  },
};

/** `base` + `name`, tolerating a base without its trailing slash. */
export function fileUrl(baseUrl: string, name: string): string {
  return `${baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`}${name}`;
}
