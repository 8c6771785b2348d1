/** Image files in, model input tensors out: JPEG/PNG decoding, resizing, normalization (`kiln.images`). */
export { toTensor, pixelsToTensor, imageInputSpec, centerCropBox, rgbToGrey, type ImageOptions, type ImageCrop, type ImageModel, type ImageInputSpec } from './to-tensor.js';
export { decodeImage, encodePng, type DecodedImage } from './decode.js';
export { readImageHeader, sniffImageFormat, looksLikeImage, ImageError, DEFAULT_MAX_IMAGE_PIXELS, type ImageHeader, type ImageFormat, type ImageLimits, type ImageProblem } from './header.js';
export { resizeBilinear, type CropBox } from './resize.js';
