#include "CKernels.h"

#include <string.h>

// im2col and col2im: the lowering behind the convolutions' products (see Convolution.swift). One traversal serves
// both directions. Runs are short (a grid row: 7 to 28 values in the image models), so the per-run work is a few
// pointer increments, the strides are specialized, and nothing is checked per value.

/// The grid positions whose tap `t` lands inside the image (the others read padding), as [*low, *high).
static inline void valid_range(const rl_conv_axis *a, long t, long *low, long *high) {
    long offset = t * a->dilation - a->padding;
    long lo = offset >= 0 ? 0 : (-offset + a->stride - 1) / a->stride;
    long hi = offset >= a->image ? 0 : (a->image - 1 - offset) / a->stride + 1;
    if (hi > a->grid) hi = a->grid;
    if (lo > hi) lo = hi;
    *low = lo;
    *high = hi;
}

static inline __attribute__((always_inline)) void traverse(float *image, float *lowered, long rowStride,
                                                           long channels, const rl_conv_axis *h,
                                                           const rl_conv_axis *w, int unlower) {
    const long width = w->image, plane = h->image * w->image, gridWidth = w->grid, sw = w->stride;
    for (long c = 0; c < channels; c++) {
        for (long i = 0; i < h->kernel; i++) {
            long y0, y1;
            valid_range(h, i, &y0, &y1);
            for (long j = 0; j < w->kernel; j++) {
                long x0, x1;
                valid_range(w, j, &x0, &x1);
                float *row = lowered + ((c * h->kernel + i) * w->kernel + j) * rowStride;
                // The image offset of grid cell (y, x): c·plane + (y·sh + i·dh − ph)·width + x·sw + j·dw − pw.
                long first = c * plane + (i * h->dilation - h->padding) * width + j * w->dilation - w->padding;
                for (long y = 0; y < h->grid; y++) {
                    float *out = row + y * gridWidth;
                    if (y < y0 || y >= y1) {
                        if (!unlower) memset(out, 0, (size_t)gridWidth * sizeof(float));
                        continue;
                    }
                    long at = first + y * h->stride * width;
                    if (unlower) {
                        if (sw == 1) {
                            for (long x = x0; x < x1; x++) image[at + x] += out[x];
                        } else {
                            for (long x = x0; x < x1; x++) image[at + x * sw] += out[x];
                        }
                    } else {
                        for (long x = 0; x < x0; x++) out[x] = 0;
                        if (sw == 1) {
                            for (long x = x0; x < x1; x++) out[x] = image[at + x];
                        } else if (sw == 2) {
                            for (long x = x0; x < x1; x++) out[x] = image[at + 2 * x];
                        } else {
                            for (long x = x0; x < x1; x++) out[x] = image[at + x * sw];
                        }
                        for (long x = x1; x < gridWidth; x++) out[x] = 0;
                    }
                }
            }
        }
    }
}

void rl_lower(const float *image, float *lowered, long rowStride, long channels, const rl_conv_axis *h,
              const rl_conv_axis *w) {
    traverse((float *)image, lowered, rowStride, channels, h, w, 0);
}

void rl_unlower(const float *lowered, float *image, long rowStride, long channels, const rl_conv_axis *h,
                const rl_conv_axis *w) {
    traverse(image, (float *)lowered, rowStride, channels, h, w, 1);
}
