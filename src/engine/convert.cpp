#include "engine/convert.h"

#include <vector>

#include "common/error.h"
#include "engine/gguf_writer.h"
#include "engine/kernels/kernels.h"

namespace sparkv {

void write_converted_model(const GgufFile& file, GgmlType type, const std::string& path,
                           const std::function<void(size_t, size_t)>& on_progress) {
    const auto& traits = ggml_traits(type);
    if (type == GgmlType::Q8_1 || type == GgmlType::Q8_K)
        fail("{} is an activation encoding, not a weight type to convert to", traits.name);
    if (!traits.computable)
        fail("SparKV cannot encode tensors of type {} (it has no kernels for it)", traits.name);
    for (const auto& t : file.tensors()) {
        if (t.n_dims < 2 || t.type == type) continue;  // copied as they are
        if (!ggml_traits(t.type).computable)
            fail("{}: tensor '{}' has type {}, which SparKV cannot decode", file.source(), t.name,
                 ggml_traits(t.type).name);
        if (t.ne[0] % traits.block_elements != 0)
            fail("{}: tensor '{}' has rows of {} elements, which do not fit {} blocks of {}",
                 file.source(), t.name, t.ne[0], traits.name, traits.block_elements);
    }
    GgufWriter w;
    for (const auto& [key, value] : file.metadata()) {
        // The writer sets its own alignment; file_type describes the old encoding.
        if (key == "general.alignment" || key == "general.file_type") continue;
        w.copy_value(key, value);
    }
    std::vector<float> row;
    size_t done = 0;
    for (const auto& t : file.tensors()) {
        if (on_progress) on_progress(done++, file.tensors().size());
        std::vector<int64_t> shape(t.ne, t.ne + t.n_dims);
        if (t.n_dims < 2 || t.type == type) {
            w.add_tensor(t.name, t.type, shape, std::vector<uint8_t>(t.data, t.data + t.bytes));
            continue;
        }
        const size_t src_row = ggml_row_bytes(t.type, t.ne[0]);
        const size_t dst_row = ggml_row_bytes(type, t.ne[0]);
        std::vector<uint8_t> out(static_cast<size_t>(t.rows()) * dst_row);
        row.resize(static_cast<size_t>(t.ne[0]));
        for (int64_t r = 0; r < t.rows(); ++r) {
            kernels::dequantize_row(t.type, t.data + static_cast<size_t>(r) * src_row, row.data(),
                                    t.ne[0]);
            kernels::quantize_row(type, row.data(), out.data() + static_cast<size_t>(r) * dst_row,
                                  t.ne[0]);
        }
        w.add_tensor(t.name, type, shape, std::move(out));
    }
    if (on_progress) on_progress(done, file.tensors().size());
    w.write(path);
}

}  // namespace sparkv
