// The kernels on the reference model's real, memory-mapped weights (skipped when the model has
// not been fetched): every ISA's matmul against the reference on SmolLM2's Q4_1 projections and
// its Q8_0 embedding, which sit at arbitrary (unaligned) offsets of the mapping.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/gguf.h"
#include "engine/kernels/matmul_driver.h"
#include "kernel_test_util.h"
#include "test_support.h"

namespace sparkv::kernels {
namespace {

Matrix matrix_of(const GgufTensorInfo& t, int64_t max_rows) {
    Matrix m;
    m.type = t.type;
    m.data = t.data;
    m.cols = t.ne[0];
    m.rows = std::min(t.rows(), max_rows);
    m.row_bytes = ggml_row_bytes(t.type, t.ne[0]);
    return m;
}

TEST(ModelWeights, MatmulOnMappedTensorsMatchesReference) {
    SPARKV_REQUIRE_REFERENCE_MODEL(path);
    const GgufFile file = GgufFile::open(path);
    ThreadPool pool(2);
    for (const char* name : {"blk.0.attn_q.weight", "blk.7.ffn_down.weight", "token_embd.weight"}) {
        const GgufTensorInfo* info = file.find_tensor(name);
        ASSERT_NE(info, nullptr) << name;
        const Matrix w = matrix_of(*info, 700);
        for (int64_t tokens : {1, 33}) {
            const auto x = testing::random_floats(tokens * w.cols, 9);
            std::vector<float> want(tokens * w.rows);
            ref::matmul(w, x.data(), w.cols, tokens, want.data(), w.rows);
            for (Isa isa : testing::runnable_isas()) {
                std::vector<float> got(tokens * w.rows);
                detail::matmul_with(detail::kernel_table(isa), w, x.data(), w.cols, tokens,
                                    got.data(), w.rows, pool);
                double max_err = 0, scale = 0;
                for (size_t i = 0; i < got.size(); ++i) {
                    max_err = std::max(max_err, double(std::fabs(got[i] - want[i])));
                    scale = std::max(scale, double(std::fabs(want[i])));
                }
                EXPECT_LT(max_err, 1e-5 * scale + 1e-6)
                    << name << " (" << ggml_traits(w.type).name << "), " << tokens << " tokens, "
                    << isa_name(isa);
            }
        }
    }
}

}  // namespace
}  // namespace sparkv::kernels
