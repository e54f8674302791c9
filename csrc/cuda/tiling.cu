// CUDA versions of csrc/tiling.cpp's pack and blend, compiled at run time by NVRTC
// (srsdk/tiling_cuda.py) with --fmad=false and IEEE division: every operation rounds as
// the C++ kernels and torch round it, so the uint8 results are bit-identical.
// No headers: float16 conversions use the PTX cvt instructions directly.

typedef unsigned char u8;
typedef unsigned short f16;  // IEEE binary16 bits

__device__ __forceinline__ float load(const float* p, long long i) { return p[i]; }
__device__ __forceinline__ float load(const f16* p, long long i) {
    float value;
    asm("cvt.f32.f16 %0, %1;" : "=f"(value) : "h"(p[i]));
    return value;
}
__device__ __forceinline__ void store(float* p, long long i, float value) { p[i] = value; }
__device__ __forceinline__ void store(f16* p, long long i, float value) {
    f16 bits;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(bits) : "f"(value));
    p[i] = bits;
}

// round-half-even(clamp(v, 0, 1) * 255); NaN becomes 0.
__device__ __forceinline__ u8 quantize(float v) {
    float t = v * 255.0f;
    t = t >= 0.0f ? t : 0.0f;
    t = t > 255.0f ? 255.0f : t;
    return (u8)rintf(t);
}

// One thread per tile pixel: frame (uint8 H x W x 3, byte strides) -> out[n][ch][y][x] = byte / 255.
template <class Out>
__device__ void pack(const u8* frame, long long sy, long long sx, long long sc, const int* ys, const int* xs,
                     int cols, int tile_h, int tile_w, long long count, Out* out) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= count) return;
    const int x = (int)(i % tile_w);
    const int y = (int)((i / tile_w) % tile_h);
    const long long n = i / ((long long)tile_w * tile_h);
    const u8* px = frame + (ys[n / cols] + y) * sy + (xs[n % cols] + x) * sx;
    const long long plane = (long long)tile_h * tile_w;
    const long long at = n * 3 * plane + (long long)y * tile_w + x;
    store(out, at, (float)px[0] / 255.0f);
    store(out, at + plane, (float)px[sc] / 255.0f);
    store(out, at + 2 * plane, (float)px[2 * sc] / 255.0f);
}

// One thread per output pixel; the per-axis source tables are srsdk.tiling.BlendTable's.
template <class In>
__device__ void blend(const In* batch, int tile_h, int tile_w, int cols, const int* ro, const int* ri,
                      const int* rl, const float* rw, const int* co, const int* ci, const int* cl,
                      const float* cw, int height, int width, int crop, u8* out) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)height * width) return;
    const int x = (int)(i % width), y = (int)(i / width);
    const long long plane = (long long)tile_h * tile_w;
    u8* o = out + i * 3;
    if (crop) {
        const long long p = ((long long)ri[ro[y]] * cols + ci[co[x]]) * 3 * plane + (long long)rl[ro[y]] * tile_w +
                            cl[co[x]];
        o[0] = quantize(load(batch, p));
        o[1] = quantize(load(batch, p + plane));
        o[2] = quantize(load(batch, p + 2 * plane));
        return;
    }
    float acc0 = 0.0f, acc1 = 0.0f, acc2 = 0.0f, total = 0.0f;
    for (int ky = ro[y]; ky < ro[y + 1]; ++ky) {
        for (int kx = co[x]; kx < co[x + 1]; ++kx) {
            const float w = rw[ky] * cw[kx];
            const long long p = ((long long)ri[ky] * cols + ci[kx]) * 3 * plane + (long long)rl[ky] * tile_w + cl[kx];
            acc0 += w * load(batch, p);
            acc1 += w * load(batch, p + plane);
            acc2 += w * load(batch, p + 2 * plane);
            total += w;
        }
    }
    o[0] = quantize(acc0 / total);
    o[1] = quantize(acc1 / total);
    o[2] = quantize(acc2 / total);
}

#define PACK_ARGS                                                                                         \
    const u8 *frame, long long sy, long long sx, long long sc, const int *ys, const int *xs, int cols, \
        int tile_h, int tile_w, long long count
#define BLEND_ARGS                                                                                        \
    int tile_h, int tile_w, int cols, const int *ro, const int *ri, const int *rl, const float *rw,       \
        const int *co, const int *ci, const int *cl, const float *cw, int height, int width, int crop, u8 *out

extern "C" __global__ void pack_f32(PACK_ARGS, float* out) { pack(frame, sy, sx, sc, ys, xs, cols, tile_h, tile_w, count, out); }
extern "C" __global__ void pack_f16(PACK_ARGS, f16* out) { pack(frame, sy, sx, sc, ys, xs, cols, tile_h, tile_w, count, out); }
extern "C" __global__ void blend_f32(const float* batch, BLEND_ARGS) {
    blend(batch, tile_h, tile_w, cols, ro, ri, rl, rw, co, ci, cl, cw, height, width, crop, out);
}
extern "C" __global__ void blend_f16(const f16* batch, BLEND_ARGS) {
    blend(batch, tile_h, tile_w, cols, ro, ri, rl, rw, co, ci, cl, cw, height, width, crop, out);
}
