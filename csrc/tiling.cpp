// Fused pack and blend loops; see tiling.hpp for the contracts.
#include "tiling.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <thread>
#include <vector>

#ifdef __linux__
#include <sched.h>
#endif

#ifdef SRSDK_OPENMP
#include <omp.h>
#endif

namespace srsdk {
namespace {

// The CPUs this process may run on (its affinity mask, which containers and taskset narrow),
// else the machine's count.
int usable_cpus() {
#ifdef __linux__
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// Split [0, count) into one contiguous chunk per thread and run body(begin, end) on each.
// Where a thread cannot be started (a process or memory limit), this thread runs the chunks
// left: a thread that failed to start must not abort the process. (That holds for the
// std::thread build; in the OpenMP build libgomp decides, and it exits the process.)
template <class Body>
void parallel_for(std::int64_t count, int threads, Body&& body) {
    if (threads <= 0) threads = usable_cpus();
    const std::int64_t n = std::max<std::int64_t>(1, std::min<std::int64_t>(threads, count));
    // The first count % n chunks one longer; no count * i, which overflows for large counts.
    const std::int64_t size = count / n, longer = count % n;
    auto begin = [&](std::int64_t i) { return i * size + std::min(i, longer); };
    auto chunk = [&](std::int64_t i) { body(begin(i), begin(i + 1)); };
#ifdef SRSDK_OPENMP
#pragma omp parallel for schedule(static, 1) num_threads(static_cast<int>(n))
    for (std::int64_t i = 0; i < n; ++i) chunk(i);
#else
    std::vector<std::thread> workers;
    std::int64_t started = 1;
    try {
        workers.reserve(static_cast<std::size_t>(n - 1));
        for (; started < n; ++started) workers.emplace_back(chunk, started);  // reserved: only the thread can throw
    } catch (const std::exception&) {
        // No more threads now: the chunks from `started` on run here.
    }
    for (std::int64_t i = started; i < n; ++i) chunk(i);
    chunk(0);
    for (auto& worker : workers) worker.join();
#endif
}

std::uint16_t float_to_half(float value) {
    std::uint32_t x;
    std::memcpy(&x, &value, sizeof x);
    const std::uint32_t sign = (x >> 16) & 0x8000u;
    const std::uint32_t abs = x & 0x7fffffffu;
    if (abs >= 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
    if (abs >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to inf
    const std::uint32_t exponent = abs >> 23;
    std::uint32_t result;
    std::uint32_t rest, halfway;
    if (exponent >= 113) {  // a normal half: drop 13 mantissa bits
        result = ((exponent - 112) << 10) | ((abs & 0x7fffffu) >> 13);
        rest = abs & 0x1fffu;
        halfway = 0x1000u;
    } else if (exponent >= 102) {  // a subnormal half: shift the full significand
        const std::uint32_t significand = (abs & 0x7fffffu) | 0x800000u;
        const std::uint32_t shift = 126 - exponent;
        result = significand >> shift;
        rest = significand & ((1u << shift) - 1);
        halfway = 1u << (shift - 1);
    } else {
        return static_cast<std::uint16_t>(sign);  // below half the smallest subnormal
    }
    if (rest > halfway || (rest == halfway && (result & 1u))) ++result;  // carries into the exponent correctly
    return static_cast<std::uint16_t>(sign | result);
}

float half_to_float(std::uint16_t bits) {
    const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
    const std::uint32_t exponent = (bits >> 10) & 0x1fu;
    std::uint32_t mantissa = bits & 0x3ffu;
    std::uint32_t x;
    if (exponent == 0x1f) {
        x = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent != 0) {
        x = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        x = sign;
    } else {  // subnormal: normalise
        std::uint32_t shift = 0;
        while (!(mantissa & 0x400u)) {
            mantissa <<= 1;
            ++shift;
        }
        x = sign | ((113 - shift) << 23) | ((mantissa & 0x3ffu) << 13);
    }
    float value;
    std::memcpy(&value, &x, sizeof value);
    return value;
}

// u8 -> value / 255, computed once (a division, exactly as torch and the CUDA kernel do it).
const std::array<float, 256>& unit_f32() {
    static const std::array<float, 256> table = [] {
        std::array<float, 256> t{};
        for (int i = 0; i < 256; ++i) t[i] = static_cast<float>(i) / 255.0f;
        return t;
    }();
    return table;
}

const std::array<std::uint16_t, 256>& unit_f16() {
    static const std::array<std::uint16_t, 256> table = [] {
        std::array<std::uint16_t, 256> t{};
        for (int i = 0; i < 256; ++i) t[i] = float_to_half(unit_f32()[i]);
        return t;
    }();
    return table;
}

const std::vector<float>& half_table() {
    static const std::vector<float> table = [] {
        std::vector<float> t(65536);
        for (std::uint32_t i = 0; i < 65536; ++i) t[i] = half_to_float(static_cast<std::uint16_t>(i));
        return t;
    }();
    return table;
}

// round-half-even(clamp(v, 0, 1) * 255); NaN becomes 0.
inline std::uint8_t quantize(float v) {
    float t = v * 255.0f;
    if (!(t >= 0.0f)) t = 0.0f;
    if (t > 255.0f) t = 255.0f;
    t = (t + 12582912.0f) - 12582912.0f;  // 1.5 * 2^23: rounds to an integer, ties to even
    return static_cast<std::uint8_t>(t);
}

template <class Out>
void pack_as(const FrameView& f, const TileGrid& g, Out* out, const std::array<Out, 256>& unit, int threads) {
    const std::int64_t plane = g.tile_h * g.tile_w;
    parallel_for(g.rows * g.cols * g.tile_h, threads, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t item = begin; item < end; ++item) {
            const std::int64_t n = item / g.tile_h, y = item % g.tile_h;
            const std::int64_t r = n / g.cols, c = n % g.cols;
            const std::uint8_t* src = f.data + (g.ys[r] + y) * f.stride_y + g.xs[c] * f.stride_x;
            Out* dst = out + n * 3 * plane + y * g.tile_w;
            for (std::int64_t x = 0; x < g.tile_w; ++x) {
                const std::uint8_t* px = src + x * f.stride_x;
                dst[x] = unit[px[0]];
                dst[plane + x] = unit[px[f.stride_c]];
                dst[2 * plane + x] = unit[px[2 * f.stride_c]];
            }
        }
    });
}

// A run of output columns that crop mode reads from one tile column, at consecutive pixels.
struct Segment {
    std::int64_t x0, length, col, local0;
};

std::vector<Segment> crop_segments(const BlendAxis& cols) {
    std::vector<Segment> runs;
    for (std::int64_t x = 0; x < cols.size; ++x) {
        const std::int64_t c = cols.index[cols.offsets[x]], lx = cols.local[cols.offsets[x]];
        if (!runs.empty() && runs.back().col == c && runs.back().local0 + runs.back().length == lx) {
            ++runs.back().length;
        } else {
            runs.push_back({x, 1, c, lx});
        }
    }
    return runs;
}

template <class In, class Load>
void blend_as(const In* batch, Load load, std::int64_t tile_h, std::int64_t tile_w, std::int64_t cols,
              const BlendAxis& ry, const BlendAxis& rx, bool crop, std::uint8_t* out, int threads) {
    const std::int64_t plane = tile_h * tile_w;
    const std::vector<Segment> runs = crop ? crop_segments(rx) : std::vector<Segment>{};
    parallel_for(ry.size, threads, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t y = begin; y < end; ++y) {
            std::uint8_t* row = out + y * rx.size * 3;
            if (crop) {
                const std::int64_t r = ry.index[ry.offsets[y]], ly = ry.local[ry.offsets[y]];
                for (const Segment& s : runs) {
                    const In* p = batch + (r * cols + s.col) * 3 * plane + ly * tile_w + s.local0;
                    std::uint8_t* o = row + s.x0 * 3;
                    for (std::int64_t x = 0; x < s.length; ++x) {
                        o[3 * x] = quantize(load(p[x]));
                        o[3 * x + 1] = quantize(load(p[plane + x]));
                        o[3 * x + 2] = quantize(load(p[2 * plane + x]));
                    }
                }
                continue;
            }
            for (std::int64_t x = 0; x < rx.size; ++x) {
                float acc[3] = {0.0f, 0.0f, 0.0f};
                float total = 0.0f;
                for (std::int32_t ky = ry.offsets[y]; ky < ry.offsets[y + 1]; ++ky) {
                    for (std::int32_t kx = rx.offsets[x]; kx < rx.offsets[x + 1]; ++kx) {
                        const float w = ry.weight[ky] * rx.weight[kx];
                        const In* p = batch + (ry.index[ky] * cols + rx.index[kx]) * 3 * plane +
                                      ry.local[ky] * tile_w + rx.local[kx];
                        acc[0] += w * load(p[0]);
                        acc[1] += w * load(p[plane]);
                        acc[2] += w * load(p[2 * plane]);
                        total += w;
                    }
                }
                for (int ch = 0; ch < 3; ++ch) row[3 * x + ch] = quantize(acc[ch] / total);
            }
        }
    });
}

}  // namespace

void pack(const FrameView& frame, const TileGrid& grid, void* out, FloatType type, int threads) {
    if (type == FloatType::f32) {
        pack_as(frame, grid, static_cast<float*>(out), unit_f32(), threads);
    } else {
        pack_as(frame, grid, static_cast<std::uint16_t*>(out), unit_f16(), threads);
    }
}

void blend(const void* batch, FloatType type, std::int64_t tile_h, std::int64_t tile_w, std::int64_t cols,
           const BlendAxis& out_rows, const BlendAxis& out_cols, bool crop, std::uint8_t* out, int threads) {
    if (type == FloatType::f32) {
        blend_as(static_cast<const float*>(batch), [](float v) { return v; }, tile_h, tile_w, cols, out_rows,
                 out_cols, crop, out, threads);
    } else {
        const float* table = half_table().data();
        blend_as(static_cast<const std::uint16_t*>(batch), [table](std::uint16_t v) { return table[v]; }, tile_h,
                 tile_w, cols, out_rows, out_cols, crop, out, threads);
    }
}

}  // namespace srsdk
