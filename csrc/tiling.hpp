// Fused tile packing and overlap blending for tiled super-resolution (CPU).
//
// Plain C++ over pointers, sizes and strides: no Python here. csrc/bindings.cpp validates
// every argument before calling in, so these functions trust their inputs.
#pragma once

#include <cstdint>

namespace srsdk {

enum class FloatType { f32, f16 };

// A uint8 H x W x 3 frame; strides in bytes, all non-negative (any view of a larger array).
struct FrameView {
    const std::uint8_t* data;
    std::int64_t height, width;
    std::int64_t stride_y, stride_x, stride_c;
};

// Tiles form a grid: tile n = r * cols + c starts at LR pixel (ys[r], xs[c]); all tiles are
// tile_h x tile_w and lie inside the frame.
struct TileGrid {
    const std::int32_t* ys;
    std::int64_t rows;
    const std::int32_t* xs;
    std::int64_t cols;
    std::int64_t tile_h, tile_w;
};

// One axis of a blend. Output coordinate i takes contributions k in [offsets[i], offsets[i+1]):
// tile row (or column) index[k], at coordinate local[k] inside that tile, with weight[k].
struct BlendAxis {
    const std::int32_t* offsets;
    const std::int32_t* index;
    const std::int32_t* local;
    const float* weight;
    std::int64_t size;
};

// frame -> out, a contiguous N x 3 x tile_h x tile_w batch (float32, or float16 bits), value / 255.
void pack(const FrameView& frame, const TileGrid& grid, void* out, FloatType type, int threads);

// batch (N x 3 x tile_h x tile_w, contiguous) -> out, a contiguous rows.size x cols.size x 3
// uint8 frame. Crop mode reads the single contribution of each pixel; otherwise the weighted
// contributions are summed in tile order and divided by the summed weight. Then
// round-half-even(clamp(v, 0, 1) * 255), as torch does it.
void blend(const void* batch, FloatType type, std::int64_t tile_h, std::int64_t tile_w, std::int64_t cols,
           const BlendAxis& out_rows, const BlendAxis& out_cols, bool crop, std::uint8_t* out, int threads);

}  // namespace srsdk
