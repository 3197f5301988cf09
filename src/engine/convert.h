// Re-encodes a GGUF model's weight matrices into another tensor type (e.g. F32), keeping all
// metadata. codec-bench uses an F32 copy to measure the codec's own effect on the model, apart
// from the rounding noise that quantised weights and activations add.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "engine/ggml_types.h"
#include "engine/gguf.h"

namespace sparkv {

// Writes `file` to `path` with every 2-D tensor re-encoded as `type`; 1-D tensors are kept.
// Throws Error before writing anything when a tensor's rows do not fit the type's blocks.
// on_progress, if given, sees (tensors done, tensors total) after each tensor.
void write_converted_model(const GgufFile& file, GgmlType type, const std::string& path,
                           const std::function<void(size_t, size_t)>& on_progress = {});

}  // namespace sparkv
