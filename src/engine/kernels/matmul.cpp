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

namespace {

// How one matrix's product is cut into row x token rectangles.
struct Split {
    int64_t row_chunk = 0, row_tasks = 0;
    int64_t token_chunk = 0, token_tasks = 0;
    int64_t tasks() const { return row_tasks * token_tasks; }
};

// Tokens per task: a chunk of activations that stays in L2 while the rows stream past.
// Rows per task: enough tasks to balance the threads (about 8 per thread, so that a thread that
// gets preempted delays the end little), in multiples of the panel; `share` of the job's work.
Split split_for(const Matrix& w, int64_t n_tokens, int64_t threads, double share) {
    Split s;
    s.token_chunk = n_tokens <= 8 ? n_tokens : 256;
    s.token_tasks = (n_tokens + s.token_chunk - 1) / s.token_chunk;
    const double wanted = threads == 1 ? 1.0 : std::max(1.0, threads * 8 * share);
    const int64_t wanted_tasks = std::max<int64_t>(
        1, (static_cast<int64_t>(wanted + 0.5) + s.token_tasks - 1) / s.token_tasks);
    s.row_chunk = std::max(kGemmPanelRows,
                           round_up((w.rows + wanted_tasks - 1) / wanted_tasks, kGemmPanelRows));
    s.row_tasks = (w.rows + s.row_chunk - 1) / s.row_chunk;
    return s;
}

}  // namespace

void matmul_with(const KernelTable& kt, const Matrix& w, const float* x, int64_t ldx,
                 int64_t n_tokens, float* y, int64_t ldy, ThreadPool& pool) {
    const MatmulOutput one[1] = {{&w, y, ldy}};
    matmul_many_with(kt, one, x, ldx, n_tokens, pool);
}

void matmul_many_with(const KernelTable& kt, std::span<const MatmulOutput> outputs, const float* x,
                      int64_t ldx, int64_t n_tokens, ThreadPool& pool) {
    if (outputs.empty()) return;
    const int64_t cols = outputs[0].w->cols;
    double work = 0;
    for (const auto& o : outputs) {
        validate(*o.w, ldx, n_tokens, o.ldy);
        if (o.w->cols != cols)
            fail("matmul: products of the same activations need equal columns ({} and {})", cols,
                 o.w->cols);
        work += double(o.w->rows) * double(o.w->cols) * double(n_tokens);
    }
    if (n_tokens == 0) return;

    // Activations encoded once per distinct activation type (usually one).
    std::vector<std::unique_ptr<ActivationBuffers>> acts;
    std::vector<const PackedActivations*> packed(outputs.size());
    for (size_t i = 0; i < outputs.size(); ++i) {
        const GgmlType type = ref::activation_type(outputs[i].w->type);
        for (const auto& a : acts)
            if (a->packed.type == type) packed[i] = &a->packed;
        if (packed[i]) continue;
        acts.push_back(std::make_unique<ActivationBuffers>(type, cols, n_tokens));
        pack_activations(kt, x, ldx, acts.back()->packed, pool);
        packed[i] = &acts.back()->packed;
    }

    const bool parallel = work >= kParallelMinWork;
    const int64_t threads = parallel ? pool.size() : 1;
    std::vector<Split> splits(outputs.size());
    std::vector<int64_t> first_task(outputs.size() + 1, 0);
    size_t scratch_floats = 0;  // uninitialised: kernels write first
    for (size_t i = 0; i < outputs.size(); ++i) {
        const Matrix& w = *outputs[i].w;
        splits[i] = split_for(w, n_tokens, threads,
                              double(w.rows) * double(w.cols) * double(n_tokens) / work);
        first_task[i + 1] = first_task[i] + splits[i].tasks();
        scratch_floats = std::max(scratch_floats, gemm_scratch_floats(w));
    }
    const std::unique_ptr<float[]> scratch(
        new float[scratch_floats * static_cast<size_t>(threads)]);
    run_tasks(pool, parallel, first_task.back(), [&](int64_t task, int thread) {
        size_t i = 0;
        while (task >= first_task[i + 1]) ++i;
        const Split& s = splits[i];
        const int64_t local = task - first_task[i];
        GemmTask t;
        t.w = outputs[i].w;
        t.a = packed[i];
        t.r0 = (local % s.row_tasks) * s.row_chunk;
        t.r1 = std::min(t.w->rows, t.r0 + s.row_chunk);
        t.t0 = (local / s.row_tasks) * s.token_chunk;
        t.t1 = std::min(n_tokens, t.t0 + s.token_chunk);
        t.y = outputs[i].y;
        t.ldy = outputs[i].ldy;
        t.scratch = scratch.get() + scratch_floats * static_cast<size_t>(thread);
        kt.gemm(t);
    });
}

}  // namespace sparkv::kernels::detail
