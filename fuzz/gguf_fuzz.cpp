// libFuzzer target for the GGUF parser and the weight kernels behind the model loader: any byte
// string must parse or throw sparkv::Error, a parsed file's tensors must lie inside the buffer,
// and every 2-D tensor of a type SparKV computes with (every supported quantisation, including
// mixed-type files) must decode and multiply with activations without a crash or sanitizer
// report, whatever its bytes: the GEMV path (1 token) and the panel GEMM path (9 tokens).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "common/error.h"
#include "common/thread_pool.h"
#include "engine/gguf.h"
#include "engine/kernels/kernels.h"

namespace {

// Bounds the work one input can cause (the fuzzer wants many executions per second).
constexpr int64_t kMaxElements = 1 << 16;
constexpr int64_t kTokens = 9;

void exercise_kernels(const sparkv::GgufTensorInfo& t) {
    using namespace sparkv;
    const auto& traits = ggml_traits(t.type);
    if (!traits.computable || t.n_dims != 2 || t.elements() > kMaxElements) return;
    const int64_t cols = t.ne[0], rows = t.ne[1];
    std::vector<float> row(static_cast<size_t>(cols));
    kernels::dequantize_row(t.type, t.data, row.data(), cols);
    std::vector<float> x(static_cast<size_t>(cols * kTokens));
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) - 3.0f;
    std::vector<float> y(static_cast<size_t>(rows * kTokens));
    const kernels::Matrix m{t.type, t.data, rows, cols, ggml_row_bytes(t.type, cols)};
    static ThreadPool pool(1);
    kernels::matmul(m, x.data(), cols, 1, y.data(), rows, pool);
    kernels::matmul(m, x.data(), cols, kTokens, y.data(), rows, pool);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const auto file = sparkv::GgufFile::parse(data, size, "fuzz");
        for (const auto& t : file.tensors()) {
            if (t.data < data || t.data + t.bytes > data + size) std::abort();
        }
        for (const auto& [key, value] : file.metadata()) {
            (void)key;
            for (const auto s : value.strings)
                if (s.data() < reinterpret_cast<const char*>(data) ||
                    s.data() + s.size() > reinterpret_cast<const char*>(data) + size)
                    std::abort();
        }
        for (const auto& t : file.tensors()) exercise_kernels(t);
    } catch (const sparkv::Error&) {
    }
    return 0;
}
