/** The package version, and the code fingerprint that goes into every run key. */
export const PRUNEBENCH_VERSION = "0.1.0";

/**
 * Bump RESULTS_REVISION whenever a change alters what a run computes (training, pruning, metrics): finished runs
 * then get new keys and are re-run, instead of silently mixing old and new numbers. Cosmetic changes leave it.
 */
// 4: unpadded stride-1 convs with short filter rows (LeNet-5-Caffe's conv1) compute their filter gradient with the
// direct kernel of native/src/smallconv.cc, summing in another order (forward bits unchanged); masked 5x5 convs at
// density 0.5-0.7 run the sparse kernels instead of the dense ones (float summation order).
// 5: convs whose output gradient is mostly zeros (a ReLU + 2x2 max pool after them: LeNet-5's and LeNet-5-Caffe's
//    conv2) take their input and filter gradients from the scatter kernels (native/src/scatterconv.cc), summing in
//    another order.
// 6: a masked conv's sparse filter gradient is preferred to the scatter kernel at a lower cost ratio (0.33 instead
//    of 0.55; 0.43 for the input gradient), after the sparse kernels' loads stopped straddling cache lines: some
//    masked LeNet-5-Caffe conv2 gradients sum in another order. (The conv + max-pool kernel and the aligned buffers
//    leave every bit as it was.)
// 7: a grey first conv's filter gradient (C = 1: LeNet-5-Caffe's conv1, on every LeNet-5-Caffe run) sums each weight's
//    products in 8 lanes over an image's pixels, then image by image (native/src/smallconv.cc gradFilterGrey): another
//    float order. (Its row-vectorised forward, and the sparse pooled conv2 kernels run image by image, keep the bits.)
export const RESULTS_REVISION = 7;

export const CODE_VERSION = `prunebench-${PRUNEBENCH_VERSION}+r${RESULTS_REVISION}`;

/**
 * sha256 of the sources that compute results, as of the last decision about RESULTS_REVISION
 * (test/results-revision.test.ts recomputes it and says what to do when it differs).
 */
export const RESULTS_SOURCES_SHA256 = "4dd57d74c8b518a85b1617fb9682abe19dc7255f8bb55cdfce98bd1eec89a6c0";
