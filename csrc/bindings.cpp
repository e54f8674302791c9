// srsdk._native: argument checks and conversions around csrc/tiling.hpp, nothing else.
//
// Every check that guards memory happens here, holding the GIL, and raises
// srsdk.errors.ShapeError (a ValueError) naming the argument, what was expected and what came.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "tiling.hpp"

namespace py = pybind11;
using Floats = py::array_t<float, py::array::c_style | py::array::forcecast>;
using Table = std::tuple<py::array, py::array, py::array, Floats>;

namespace {

[[noreturn]] void fail(const std::string& argument, const std::string& expected, const std::string& got) {
    const py::object error = py::module_::import("srsdk.errors").attr("ShapeError");
    const std::string message = argument + ": expected " + expected + ", got " + got;
    PyErr_SetString(error.ptr(), message.c_str());
    throw py::error_already_set();
}

std::string describe(const py::array& a) {
    std::ostringstream s;
    s << py::str(a.dtype()).cast<std::string>() << " (";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
    s << (a.ndim() == 1 ? ",)" : ")");
    if (!(a.flags() & py::array::c_style)) s << " non-contiguous";
    return s.str();
}

// By kind, size and byte order, not by dtype object: an unpickled or copied array can hold a
// dtype object of its own that equals, but is not, numpy's float32 or uint8.
bool is_native(const py::array& a, char kind, py::ssize_t itemsize) {
    return a.dtype().kind() == kind && a.dtype().itemsize() == itemsize && a.dtype().byteorder() != '>';
}

srsdk::FloatType float_type(const py::array& a, const char* argument) {
    if (is_native(a, 'f', 4)) return srsdk::FloatType::f32;
    if (is_native(a, 'f', 2)) return srsdk::FloatType::f16;
    fail(argument, "float32 or float16", describe(a));
}

void require_buffer(const py::array& a, const char* argument, std::initializer_list<py::ssize_t> shape,
                    bool writeable) {
    bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size()) && (a.flags() & py::array::c_style);
    py::ssize_t i = 0;
    for (const py::ssize_t n : shape) ok = ok && a.shape(i++) == n;
    if (ok && (!writeable || a.writeable())) return;
    std::ostringstream s;
    s << "a " << (writeable ? "writeable " : "") << "C-contiguous array of shape (";
    i = 0;
    for (const py::ssize_t n : shape) s << (i++ ? ", " : "") << n;
    s << ")";
    fail(argument, s.str(), describe(a) + (a.writeable() ? "" : " read-only"));
}

// A copy of a 1-D integer array (any integer dtype) as int32, refusing values int32 cannot
// hold: a forcecast would wrap them (2**32 becomes 0) and pass every later bound check.
// (uint64 past int64's range arrives negative and is refused as such.)
std::vector<std::int32_t> int32s(const py::array& a, const std::string& argument) {
    const char kind = a.dtype().kind();
    if ((kind != 'i' && kind != 'u') || a.ndim() != 1) fail(argument, "a 1-D integer array", describe(a));
    const auto wide = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
    std::vector<std::int32_t> copy;
    copy.reserve(static_cast<std::size_t>(wide.size()));
    for (py::ssize_t i = 0; i < wide.size(); ++i) {
        const std::int64_t v = wide.data()[i];
        if (v < std::numeric_limits<std::int32_t>::min() || v > std::numeric_limits<std::int32_t>::max()) {
            fail(argument, "values that fit int32", std::to_string(v));
        }
        copy.push_back(static_cast<std::int32_t>(v));
    }
    return copy;
}

// Copies, then checks: the kernels read only these private copies, so nothing the caller
// owns can change between the check and the use (free-threaded Python included).
std::vector<std::int32_t> copy_origins(const py::array& origins, const char* argument, std::int64_t tile,
                                       std::int64_t size) {
    std::vector<std::int32_t> copy = int32s(origins, argument);
    if (tile > size) fail(argument, "tiles of at most the frame's " + std::to_string(size) + " pixels", std::to_string(tile));
    for (const std::int64_t o : copy) {
        if (o < 0 || o + tile > size) {
            fail(argument, "tile origins in [0, " + std::to_string(size - tile) + "]", std::to_string(o));
        }
    }
    return copy;
}

struct AxisCopy {
    std::vector<std::int32_t> offsets, index, local;
    std::vector<float> weight;
    srsdk::BlendAxis view(std::int64_t size) const {
        return {offsets.data(), index.data(), local.data(), weight.data(), size};
    }
};

AxisCopy blend_axis(const Table& table, const char* argument, std::int64_t size, std::int64_t grid,
                    std::int64_t tile, bool crop) {
    const auto& [offsets, index, local, weight] = table;
    const std::string name(argument);
    if (offsets.ndim() != 1 || offsets.size() != size + 1) {
        fail(name + " offsets", std::to_string(size + 1) + " entries", std::to_string(offsets.size()));
    }
    AxisCopy c{int32s(offsets, name + " offsets"), int32s(index, name + " index"), int32s(local, name + " local"),
               {weight.data(), weight.data() + weight.size()}};
    const std::int64_t count = static_cast<std::int64_t>(c.index.size());
    if (static_cast<std::int64_t>(c.local.size()) != count || static_cast<std::int64_t>(c.weight.size()) != count ||
        c.offsets[0] != 0 || c.offsets[size] != count) {
        fail(name, "offsets from 0 to len(index) == len(local) == len(weight)", "inconsistent lengths");
    }
    for (std::int64_t i = 0; i < size; ++i) {
        const std::int64_t n = c.offsets[i + 1] - c.offsets[i];
        if (crop ? n != 1 : n < 1) {
            fail(name + " offsets", crop ? "one source per pixel (crop)" : "at least one source per pixel",
                 std::to_string(n) + " at " + std::to_string(i));
        }
    }
    for (std::int64_t k = 0; k < count; ++k) {
        if (c.index[k] < 0 || c.index[k] >= grid) fail(name + " index", "< " + std::to_string(grid), std::to_string(c.index[k]));
        if (c.local[k] < 0 || c.local[k] >= tile) fail(name + " local", "< " + std::to_string(tile), std::to_string(c.local[k]));
    }
    return c;
}

void pack(const py::array& frame, const py::array& ys, const py::array& xs, std::int64_t tile_h, std::int64_t tile_w,
          py::array out, int threads) {
    if (!is_native(frame, 'u', 1) || frame.ndim() != 3 || frame.shape(2) != 3 ||
        frame.shape(0) < 1 || frame.shape(1) < 1) {
        fail("frame", "a non-empty H x W x 3 uint8 array", describe(frame));
    }
    for (py::ssize_t i = 0; i < 3; ++i) {
        if (frame.strides(i) < 0) fail("frame", "non-negative strides", "stride " + std::to_string(frame.strides(i)));
    }
    if (tile_h < 1 || tile_w < 1) fail("tile", "at least 1 x 1", std::to_string(tile_h) + " x " + std::to_string(tile_w));
    const std::vector<std::int32_t> y0 = copy_origins(ys, "ys", tile_h, frame.shape(0));
    const std::vector<std::int32_t> x0 = copy_origins(xs, "xs", tile_w, frame.shape(1));
    const srsdk::FloatType type = float_type(out, "out");
    require_buffer(out, "out", {static_cast<py::ssize_t>(y0.size() * x0.size()), 3, tile_h, tile_w}, true);
    const srsdk::FrameView view{static_cast<const std::uint8_t*>(frame.data()), frame.shape(0), frame.shape(1),
                                frame.strides(0), frame.strides(1), frame.strides(2)};
    const srsdk::TileGrid grid{y0.data(), static_cast<std::int64_t>(y0.size()), x0.data(),
                               static_cast<std::int64_t>(x0.size()), tile_h, tile_w};
    void* data = out.mutable_data();
    // Safe without the GIL: every bound was checked above and the arrays outlive the call.
    py::gil_scoped_release release;
    srsdk::pack(view, grid, data, type, threads);
}

void blend(const py::array& batch, std::int64_t grid_rows, std::int64_t grid_cols, const Table& rows,
           const Table& cols, bool crop, py::array out, int threads) {
    const srsdk::FloatType type = float_type(batch, "batch");
    if (batch.ndim() != 4) fail("batch", "N x 3 x TH x TW", describe(batch));
    if (grid_rows < 1 || grid_cols < 1 || grid_rows > batch.shape(0) || grid_cols > batch.shape(0) ||
        grid_rows * grid_cols != batch.shape(0)) {
        fail("grid", std::to_string(batch.shape(0)) + " tiles in rows x cols",
             std::to_string(grid_rows) + " x " + std::to_string(grid_cols));
    }
    require_buffer(batch, "batch", {grid_rows * grid_cols, 3, batch.shape(2), batch.shape(3)}, false);
    const std::int64_t tile_h = batch.shape(2), tile_w = batch.shape(3);
    if (!is_native(out, 'u', 1)) fail("out", "uint8", describe(out));
    if (out.ndim() != 3) fail("out", "H x W x 3", describe(out));
    require_buffer(out, "out", {out.shape(0), out.shape(1), 3}, true);
    const AxisCopy row_table = blend_axis(rows, "rows", out.shape(0), grid_rows, tile_h, crop);
    const AxisCopy col_table = blend_axis(cols, "cols", out.shape(1), grid_cols, tile_w, crop);
    const srsdk::BlendAxis ry = row_table.view(out.shape(0)), rx = col_table.view(out.shape(1));
    const void* data = batch.data();
    auto* target = static_cast<std::uint8_t*>(out.mutable_data());
    // Safe without the GIL: every index was checked above and the arrays outlive the call.
    py::gil_scoped_release release;
    srsdk::blend(data, type, tile_h, tile_w, grid_cols, ry, rx, crop, target, threads);
}

}  // namespace

PYBIND11_MODULE(_native, m, py::mod_gil_not_used()) {
    m.doc() = "srsdk's compiled tiling kernels (private: use srsdk.tiling).";
    m.def("pack", &pack, py::arg("frame"), py::arg("ys"), py::arg("xs"), py::arg("tile_h"), py::arg("tile_w"),
          py::arg("out"), py::arg("threads") = 0,
          R"doc(Copy every tile of a uint8 HxWx3 frame into ``out`` (N x 3 x tile_h x tile_w, float32 or
float16), divided by 255. Tile n = r * len(xs) + c starts at (ys[r], xs[c]).)doc");
    m.def("blend", &blend, py::arg("batch"), py::arg("grid_rows"), py::arg("grid_cols"), py::arg("rows"),
          py::arg("cols"), py::arg("crop"), py::arg("out"), py::arg("threads") = 0,
          R"doc(Write a batch of output tiles into the uint8 frame ``out`` through per-axis source tables
(offsets, index, local, weight); crop takes one source per pixel, otherwise a weighted mean.)doc");
#ifdef SRSDK_OPENMP
    m.attr("parallel") = "openmp";
#else
    m.attr("parallel") = "std::thread";
#endif
}
