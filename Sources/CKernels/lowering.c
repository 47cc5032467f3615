#include "CKernels.h"

#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

// im2col and col2im: the lowering behind the convolutions' products (see Convolution.swift). One traversal serves
// both directions. Runs are short (a grid row: 7 to 28 values in the image models), so the per-run work is a few
// pointer increments, the strides are specialized, and nothing is checked per value. With AVX-512, the runs of
// stride-1 kernels move 16 values per masked load and store (no scalar tail), those of stride-2 kernels (every other
// image value: the DCGAN's convolutions) 8 values through compressing loads and expanding stores instead of one at a
// time; they copy and add exactly what the scalar loops do, so the values are the same bits.

#pragma clang diagnostic ignored "-Wpsabi"

#if defined(__x86_64__) || defined(__i386__)
#define AVX512 __attribute__((target("avx512f")))

/// The lowest `count` lanes (count ≤ 16).
static inline AVX512 __mmask16 lanes_avx512(long count) { return (__mmask16)((1u << count) - 1); }

/// out[x] = image[x] for x in [0, n): 16 values per masked load and store (a grid row of 10 to 28 in LeNet).
static inline AVX512 void copy_avx512(float *out, const float *image, long n) {
    for (long x = 0; x < n; x += 16) {
        __mmask16 lanes = lanes_avx512(n - x < 16 ? n - x : 16);
        _mm512_mask_storeu_ps(out + x, lanes, _mm512_maskz_loadu_ps(lanes, image + x));
    }
}

/// image[x] += lowered[x] for x in [0, n).
static inline AVX512 void add_avx512(float *image, const float *lowered, long n) {
    for (long x = 0; x < n; x += 16) {
        __mmask16 lanes = lanes_avx512(n - x < 16 ? n - x : 16);
        __m512 sum = _mm512_add_ps(_mm512_maskz_loadu_ps(lanes, image + x), _mm512_maskz_loadu_ps(lanes, lowered + x));
        _mm512_mask_storeu_ps(image + x, lanes, sum);
    }
}

/// out[x] = image[2x] for x in [0, n): 8 outputs from the even lanes of 15 image values (masked: nothing past the run
/// is read).
static inline AVX512 void copy_even_avx512(float *out, const float *image, long n) {
    for (long x = 0; x < n; x += 8) {
        long count = n - x < 8 ? n - x : 8;
        __m512 v = _mm512_maskz_loadu_ps(lanes_avx512(2 * count - 1), image + 2 * x);
        _mm512_mask_storeu_ps(out + x, lanes_avx512(count), _mm512_maskz_compress_ps(0x5555, v));
    }
}

/// image[2x] += lowered[x] for x in [0, n): 8 values expanded into the even lanes, added there only.
static inline AVX512 void add_even_avx512(float *image, const float *lowered, long n) {
    for (long x = 0; x < n; x += 8) {
        long count = n - x < 8 ? n - x : 8;
        __mmask16 even = (__mmask16)(0x5555 & lanes_avx512(2 * count - 1));
        __m512 sum = _mm512_add_ps(_mm512_maskz_loadu_ps(even, image + 2 * x), _mm512_maskz_expandloadu_ps(even, lowered + x));
        _mm512_mask_storeu_ps(image + 2 * x, even, sum);
    }
}
#endif

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
                                                           const rl_conv_axis *w, int unlower, int avx512) {
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
#if defined(__x86_64__) || defined(__i386__)
                        if (avx512 && (sw == 1 || sw == 2)) {
                            if (sw == 1) add_avx512(image + at + x0, out + x0, x1 - x0);
                            else add_even_avx512(image + at + 2 * x0, out + x0, x1 - x0);
                            continue;
                        }
#endif
                        if (sw == 1) {
                            for (long x = x0; x < x1; x++) image[at + x] += out[x];
                        } else {
                            for (long x = x0; x < x1; x++) image[at + x * sw] += out[x];
                        }
                    } else {
                        for (long x = 0; x < x0; x++) out[x] = 0;
                        if (sw == 1) {
#if defined(__x86_64__) || defined(__i386__)
                            if (avx512) copy_avx512(out + x0, image + at + x0, x1 - x0); else
#endif
                            for (long x = x0; x < x1; x++) out[x] = image[at + x];
                        } else if (sw == 2) {
#if defined(__x86_64__) || defined(__i386__)
                            if (avx512) copy_even_avx512(out + x0, image + at + 2 * x0, x1 - x0); else
#endif
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

#if defined(__x86_64__) || defined(__i386__)
static AVX512 void lower_avx512(float *image, float *lowered, long rowStride, long channels, const rl_conv_axis *h,
                                const rl_conv_axis *w, int unlower) {
    if (unlower) traverse(image, lowered, rowStride, channels, h, w, 1, 1);
    else traverse(image, lowered, rowStride, channels, h, w, 0, 1);
}
#endif

/// The traversal on the widest instructions in use (`rl_kernels_level`).
static void dispatch(float *image, float *lowered, long rowStride, long channels, const rl_conv_axis *h,
                     const rl_conv_axis *w, int unlower) {
#if defined(__x86_64__) || defined(__i386__)
    if (rl_kernels_level() == 2) {
        lower_avx512(image, lowered, rowStride, channels, h, w, unlower);
        return;
    }
#endif
    if (unlower) traverse(image, lowered, rowStride, channels, h, w, 1, 0);
    else traverse(image, lowered, rowStride, channels, h, w, 0, 0);
}

void rl_lower(const float *image, float *lowered, long rowStride, long channels, const rl_conv_axis *h,
              const rl_conv_axis *w) {
    dispatch((float *)image, lowered, rowStride, channels, h, w, 0);
}

void rl_unlower(const float *lowered, float *image, long rowStride, long channels, const rl_conv_axis *h,
                const rl_conv_axis *w) {
    dispatch(image, (float *)lowered, rowStride, channels, h, w, 1);
}
