// The matmul driver: validates the weight matrix, encodes the activations once, and splits the
// product into row x token rectangles for the thread pool. The arithmetic lives in the per-ISA
// GEMM kernels.
#include <algorithm>
#include <memory>
#include <vector>

#include "common/error.h"
#include "engine/kernels/dispatch.h"
#include "engine/kernels/matmul_driver.h"
#include "engine/kernels/reference.h"

namespace sparkv::kernels::detail {

namespace {

int64_t round_up(int64_t v, int64_t m) {
    return (v + m - 1) / m * m;
}

void validate(const Matrix& w, int64_t ldx, int64_t n_tokens, int64_t ldy) {
    const auto& traits = ggml_traits(w.type);
    if (!traits.computable || w.type == GgmlType::Q8_1 || w.type == GgmlType::Q8_K) {
        fail("matmul with weights of type {} is not supported by SparKV's kernels", traits.name);
    }
    if (w.data == nullptr || w.rows <= 0 || w.cols <= 0 || n_tokens < 0) {
        fail("matmul: empty weight matrix or negative token count ({} x {}, {} tokens)", w.rows,
             w.cols, n_tokens);
    }
    if (w.cols % traits.block_elements != 0) {
        fail("matmul: {} columns are not a whole number of {} blocks of {}", w.cols, traits.name,
             traits.block_elements);
    }
    if (n_tokens > 1 && (ldx < w.cols || ldy < w.rows)) {
        fail(
            "matmul: row strides ({} for x, {} for y) are shorter than the rows ({} inputs, {} "
            "outputs)",
            ldx, ldy, w.cols, w.rows);
    }
    if (w.row_bytes < ggml_row_bytes(w.type, w.cols)) {
        fail("matmul: row stride of {} bytes is shorter than a {} row of {} elements ({} bytes)",
             w.row_bytes, traits.name, w.cols, ggml_row_bytes(w.type, w.cols));
    }
}

}  // namespace

ActivationBuffers::ActivationBuffers(GgmlType act, int64_t cols, int64_t n_tokens) {
    packed.type = act;
    packed.cols = cols;
    packed.n_tokens = n_tokens;
    const auto tokens = static_cast<size_t>(n_tokens);
    if (act == GgmlType::F32 || act == GgmlType::F16 || act == GgmlType::BF16) {
        floats.resize(tokens * static_cast<size_t>(cols));
        packed.values = floats.data();
        return;
    }
    const int64_t block = ggml_traits(act).block_elements;
    packed.d_stride = round_up(cols / block, 8);
    packed.off_stride = round_up(cols / 32, 8);
    packed.off16_stride = act == GgmlType::Q8_K ? round_up(cols / 16, 8) : 0;
    quants.resize(tokens * static_cast<size_t>(cols));
    floats.assign(
        tokens * static_cast<size_t>(packed.d_stride + packed.off_stride + packed.off16_stride),
        0.0f);
    packed.qs = quants.data();
    packed.d = floats.data();
    packed.off = packed.d + tokens * static_cast<size_t>(packed.d_stride);
    packed.off16 = packed.off + tokens * static_cast<size_t>(packed.off_stride);
}

void pack_activations(const KernelTable& kt, const float* x, int64_t ldx,
                      const PackedActivations& a, ThreadPool& pool) {
    constexpr int64_t kTokensPerTask = 32;
    const int64_t n_tasks = (a.n_tokens + kTokensPerTask - 1) / kTokensPerTask;
    pool.parallel_for(n_tasks, [&](int64_t task, int) {
        const int64_t t0 = task * kTokensPerTask;
        kt.pack_activations(x, ldx, t0, std::min(a.n_tokens, t0 + kTokensPerTask), a);
    });
}

void matmul_with(const KernelTable& kt, const Matrix& w, const float* x, int64_t ldx,
                 int64_t n_tokens, float* y, int64_t ldy, ThreadPool& pool) {
    validate(w, ldx, n_tokens, ldy);
    if (n_tokens == 0) return;
    ActivationBuffers act(ref::activation_type(w.type), w.cols, n_tokens);
    pack_activations(kt, x, ldx, act.packed, pool);

    // Tokens per task: a chunk of activations that stays in L2 while the rows stream past.
    // Rows per task: enough tasks to balance the threads, in multiples of the panel.
    const bool parallel = double(w.rows) * double(w.cols) * double(n_tokens) >= kParallelMinWork;
    const int64_t threads = parallel ? pool.size() : 1;
    const int64_t token_chunk = n_tokens <= 8 ? n_tokens : 256;
    const int64_t token_tasks = (n_tokens + token_chunk - 1) / token_chunk;
    // About 8 tasks per thread, so that a thread that gets preempted delays the end little.
    const int64_t wanted_tasks =
        threads == 1 ? 1 : std::max<int64_t>(1, (threads * 8 + token_tasks - 1) / token_tasks);
    const int64_t row_chunk = std::max(
        kGemmPanelRows, round_up((w.rows + wanted_tasks - 1) / wanted_tasks, kGemmPanelRows));
    const int64_t row_tasks = (w.rows + row_chunk - 1) / row_chunk;

    const size_t scratch_floats = gemm_scratch_floats(w);  // uninitialised: kernels write first
    const std::unique_ptr<float[]> scratch(
        new float[scratch_floats * static_cast<size_t>(threads)]);
    run_tasks(pool, parallel, row_tasks * token_tasks, [&](int64_t task, int thread) {
        GemmTask t;
        t.w = &w;
        t.a = &act.packed;
        t.r0 = (task % row_tasks) * row_chunk;
        t.r1 = std::min(w.rows, t.r0 + row_chunk);
        t.t0 = (task / row_tasks) * token_chunk;
        t.t1 = std::min(n_tokens, t.t0 + token_chunk);
        t.y = y;
        t.ldy = ldy;
        t.scratch = scratch.get() + scratch_floats * static_cast<size_t>(thread);
        kt.gemm(t);
    });
}

}  // namespace sparkv::kernels::detail
