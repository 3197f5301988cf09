#include "engine/engine.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/error.h"
#include "engine/attention_mass.h"

namespace sparkv {

namespace k = kernels;

namespace {

void add_bias(float* rows, int64_t n_rows, const std::vector<float>& bias) {
    if (bias.empty()) return;
    const int64_t width = static_cast<int64_t>(bias.size());
    for (int64_t r = 0; r < n_rows; ++r)
        for (int64_t i = 0; i < width; ++i) rows[r * width + i] += bias[static_cast<size_t>(i)];
}

// Per-head RMSNorm (Qwen3's Q/K norm), in place.
void norm_heads(float* rows, int64_t n_rows, int n_heads, int head_dim,
                const std::vector<float>& weight, float eps) {
    if (weight.empty()) return;
    for (int64_t r = 0; r < n_rows * n_heads; ++r)
        k::rms_norm(rows + r * head_dim, weight.data(), rows + r * head_dim, head_dim, eps);
}

void add_rows(float* dst, const float* src, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

}  // namespace

Engine::Engine(const Model& model, EngineOptions options)
    : model_(model),
      pool_(options.n_threads > 0 ? options.n_threads : ThreadPool::default_threads(),
            options.pool_spin_us),
      cache_(model.config().n_layer, model.config().n_kv_head, model.config().head_dim,
             options.n_ctx > 0 ? options.n_ctx : model.config().n_ctx_train) {
    set_sparse(options.sparse);
}

void Engine::set_sparse(const SparseAttentionOptions& options) {
    k::validate(options);
    sparse_ = options;
}

HiddenState Engine::embed(std::span<const int32_t> tokens, int64_t pos0) {
    const auto& c = config();
    if (tokens.empty()) fail("embed: no tokens");
    check_range(0, pos0, static_cast<int64_t>(tokens.size()), "embed");
    HiddenState h;
    h.pos0 = pos0;
    h.n_tokens = static_cast<int64_t>(tokens.size());
    h.layer = 0;
    h.data.resize(static_cast<size_t>(h.n_tokens) * c.n_embd);
    const auto& table = model_.token_embedding();
    for (int64_t i = 0; i < h.n_tokens; ++i) {
        const int32_t tok = tokens[static_cast<size_t>(i)];
        if (tok < 0 || tok >= c.n_vocab)
            fail("token id {} is outside the vocabulary (0..{})", tok, c.n_vocab - 1);
        k::dequantize_row(table.type, table.data + static_cast<size_t>(tok) * table.row_bytes,
                          h.data.data() + i * c.n_embd, c.n_embd);
    }
    return h;
}

void Engine::check_range(int layer, int64_t pos0, int64_t n, const char* what) const {
    if (layer < 0 || layer >= config().n_layer)
        fail("{}: layer {} is outside 0..{}", what, layer, config().n_layer - 1);
    if (pos0 < 0 || n <= 0 || pos0 + n > cache_.capacity())
        fail("{}: positions [{}, {}) do not fit the context of {} positions", what, pos0, pos0 + n,
             cache_.capacity());
}

void Engine::check_history(int layer, int64_t pos0) const {
    const int64_t missing = cache_.first_missing(layer, pos0);
    if (missing < pos0)
        fail("layer {}: cannot attend from position {}: KV of position {} is not in the cache yet",
             layer, pos0, missing);
}

void Engine::prepare(const HiddenState& h, int layer) {
    const auto& c = config();
    const auto n = static_cast<size_t>(h.n_tokens);
    if (h.data.size() != n * static_cast<size_t>(c.n_embd))
        fail("hidden state holds {} floats, expected {} x {}", h.data.size(), n, c.n_embd);
    ws_.norm.resize(n * c.n_embd);
    ws_.q.resize(n * c.q_dim());
    ws_.k.resize(n * c.kv_dim());
    ws_.v.resize(n * c.kv_dim());
    ws_.attn.resize(n * c.q_dim());
    ws_.gate.resize(n * c.n_ff);
    ws_.up.resize(n * c.n_ff);
    ws_.positions.resize(n);
    for (size_t i = 0; i < n; ++i)
        ws_.positions[i] = static_cast<int32_t>(h.pos0 + static_cast<int64_t>(i));
    const auto& w = model_.layer(layer);
    for (size_t i = 0; i < n; ++i)
        k::rms_norm(h.data.data() + i * c.n_embd, w.attn_norm.data(),
                    ws_.norm.data() + i * c.n_embd, c.n_embd, c.rms_eps);
}

void Engine::compute_kv(const HiddenState& h, int layer) {
    const auto& w = model_.layer(layer);
    const int64_t kv_dim = config().kv_dim();
    const k::MatmulOutput kv[2] = {{&w.wk, ws_.k.data(), kv_dim}, {&w.wv, ws_.v.data(), kv_dim}};
    k::matmul_many(kv, ws_.norm.data(), config().n_embd, h.n_tokens, pool_);
    store_kv(h, layer);
}

void Engine::store_kv(const HiddenState& h, int layer) {
    const auto& c = config();
    const auto& w = model_.layer(layer);
    const int64_t n = h.n_tokens;
    add_bias(ws_.k.data(), n, w.bk);
    add_bias(ws_.v.data(), n, w.bv);
    norm_heads(ws_.k.data(), n, c.n_kv_head, c.head_dim, w.k_norm, c.rms_eps);
    k::rope(ws_.k.data(), n, c.n_kv_head, c.head_dim, ws_.positions.data(), c.rope);

    // Scatter token-major rows into the head-major fp16 cache.
    uint16_t* keys = cache_.keys(layer);
    uint16_t* values = cache_.values(layer);
    for (int hd = 0; hd < c.n_kv_head; ++hd) {
        const size_t base = cache_.head_offset(hd) + static_cast<size_t>(h.pos0) * c.head_dim;
        for (int64_t i = 0; i < n; ++i) {
            const size_t src =
                static_cast<size_t>(i) * c.kv_dim() + static_cast<size_t>(hd) * c.head_dim;
            const size_t dst = base + static_cast<size_t>(i) * c.head_dim;
            k::fp32_to_fp16_row(ws_.k.data() + src, keys + dst, c.head_dim);
            k::fp32_to_fp16_row(ws_.v.data() + src, values + dst, c.head_dim);
        }
    }
    cache_.mark_filled(layer, h.pos0, n);
}

void Engine::compute_q(const HiddenState& h, int layer) {
    const auto& c = config();
    k::matmul(model_.layer(layer).wq, ws_.norm.data(), c.n_embd, h.n_tokens, ws_.q.data(),
              c.q_dim(), pool_);
    finish_q(h, layer);
}

void Engine::finish_q(const HiddenState& h, int layer) {
    const auto& c = config();
    const auto& w = model_.layer(layer);
    const int64_t n = h.n_tokens;
    add_bias(ws_.q.data(), n, w.bq);
    norm_heads(ws_.q.data(), n, c.n_head, c.head_dim, w.q_norm, c.rms_eps);
    k::rope(ws_.q.data(), n, c.n_head, c.head_dim, ws_.positions.data(), c.rope);
}

void Engine::run_layer(HiddenState& h) {
    const auto& c = config();
    const int layer = h.layer;
    check_range(layer, h.pos0, h.n_tokens, "run_layer");
    check_history(layer, h.pos0);
    prepare(h, layer);
    // Q, K and V of the normed input in one job on the pool.
    const auto& w = model_.layer(layer);
    const k::MatmulOutput qkv[3] = {{&w.wq, ws_.q.data(), c.q_dim()},
                                    {&w.wk, ws_.k.data(), c.kv_dim()},
                                    {&w.wv, ws_.v.data(), c.kv_dim()}};
    k::matmul_many(qkv, ws_.norm.data(), c.n_embd, h.n_tokens, pool_);
    finish_q(h, layer);
    store_kv(h, layer);
    finish_layer(h, layer);
}

void Engine::run_layer_over_cached_kv(HiddenState& h) {
    run_layer_over_cached_kv(h, {});
}

void Engine::run_layer_over_cached_kv(HiddenState& h, std::span<float> attention_mass) {
    const int layer = h.layer;
    check_range(layer, h.pos0, h.n_tokens, "run_layer_over_cached_kv");
    check_history(layer, h.pos0 + h.n_tokens);
    prepare(h, layer);
    compute_q(h, layer);
    if (!attention_mass.empty()) {
        const auto& c = config();
        add_attention_mass({c.n_head, c.n_kv_head, c.head_dim, cache_.capacity()}, ws_.q.data(),
                           c.q_dim(), h.n_tokens, h.pos0, cache_.keys(layer), attention_mass,
                           pool_);
    }
    finish_layer(h, layer);
}

void Engine::finish_layer(HiddenState& h, int layer) {
    const auto& c = config();
    const auto& w = model_.layer(layer);
    const int64_t n = h.n_tokens;
    k::AttentionShape shape;
    shape.n_head = c.n_head;
    shape.n_kv_head = c.n_kv_head;
    shape.head_dim = c.head_dim;
    shape.kv_capacity = cache_.capacity();
    shape.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    last_stats_ = k::sparse_attention(shape, ws_.q.data(), c.q_dim(), n, ws_.positions.data(),
                                      cache_.keys(layer), cache_.values(layer), ws_.attn.data(),
                                      c.q_dim(), sparse_, pool_);
    // The output projection lands in ws_.norm (free again), then joins the residual stream.
    k::matmul(w.wo, ws_.attn.data(), c.q_dim(), n, ws_.norm.data(), c.n_embd, pool_);
    add_rows(h.data.data(), ws_.norm.data(), n * c.n_embd);

    // Feed-forward block (SwiGLU).
    for (int64_t i = 0; i < n; ++i)
        k::rms_norm(h.data.data() + i * c.n_embd, w.ffn_norm.data(), ws_.norm.data() + i * c.n_embd,
                    c.n_embd, c.rms_eps);
    const k::MatmulOutput gate_up[2] = {{&w.gate, ws_.gate.data(), c.n_ff},
                                        {&w.up, ws_.up.data(), c.n_ff}};
    k::matmul_many(gate_up, ws_.norm.data(), c.n_embd, n, pool_);
    k::swiglu(ws_.gate.data(), ws_.up.data(), ws_.gate.data(), n * c.n_ff);
    k::matmul(w.down, ws_.gate.data(), c.n_ff, n, ws_.norm.data(), c.n_embd, pool_);
    add_rows(h.data.data(), ws_.norm.data(), n * c.n_embd);
    h.layer = layer + 1;
}

void Engine::project_kv(const HiddenState& h) {
    check_range(h.layer, h.pos0, h.n_tokens, "project_kv");
    last_stats_ = {};
    prepare(h, h.layer);
    compute_kv(h, h.layer);
}

void Engine::import_kv(int layer, int64_t pos0, int64_t n, const uint16_t* k, const uint16_t* v) {
    check_range(layer, pos0, n, "import_kv");
    const auto& c = config();
    const size_t row = static_cast<size_t>(n) * c.head_dim;
    for (int hd = 0; hd < c.n_kv_head; ++hd) {
        const size_t dst = cache_.head_offset(hd) + static_cast<size_t>(pos0) * c.head_dim;
        std::memcpy(cache_.keys(layer) + dst, k + hd * row, row * sizeof(uint16_t));
        std::memcpy(cache_.values(layer) + dst, v + hd * row, row * sizeof(uint16_t));
    }
    cache_.mark_filled(layer, pos0, n);
}

void Engine::export_kv(int layer, int64_t pos0, int64_t n, uint16_t* k, uint16_t* v) const {
    check_range(layer, pos0, n, "export_kv");
    if (!cache_.is_filled(layer, pos0, n))
        fail("export_kv: layer {} positions [{}, {}) are not all in the cache", layer, pos0,
             pos0 + n);
    const auto& c = config();
    const size_t row = static_cast<size_t>(n) * c.head_dim;
    for (int hd = 0; hd < c.n_kv_head; ++hd) {
        const size_t src = cache_.head_offset(hd) + static_cast<size_t>(pos0) * c.head_dim;
        std::memcpy(k + hd * row, cache_.keys(layer) + src, row * sizeof(uint16_t));
        std::memcpy(v + hd * row, cache_.values(layer) + src, row * sizeof(uint16_t));
    }
}

std::vector<float> Engine::logits_rows(const HiddenState& h, int64_t first_row) {
    const auto& c = config();
    if (h.layer != c.n_layer)
        fail("logits: the hidden state has passed {} of {} layers", h.layer, c.n_layer);
    const int64_t rows = h.n_tokens - first_row;
    std::vector<float> normed(static_cast<size_t>(rows) * c.n_embd);
    for (int64_t i = 0; i < rows; ++i)
        k::rms_norm(h.data.data() + (first_row + i) * c.n_embd, model_.output_norm().data(),
                    normed.data() + i * c.n_embd, c.n_embd, c.rms_eps);
    std::vector<float> logits(static_cast<size_t>(rows) * c.n_vocab);
    k::matmul(model_.output(), normed.data(), c.n_embd, rows, logits.data(), c.n_vocab, pool_);
    return logits;
}

std::vector<float> Engine::last_logits(const HiddenState& h) {
    return logits_rows(h, h.n_tokens - 1);
}

std::vector<float> Engine::all_logits(const HiddenState& h) {
    return logits_rows(h, 0);
}

std::vector<float> Engine::prefill(std::span<const int32_t> tokens, int64_t pos0) {
    HiddenState h = embed(tokens, pos0);
    while (h.layer < config().n_layer) run_layer(h);
    return last_logits(h);
}

}  // namespace sparkv
