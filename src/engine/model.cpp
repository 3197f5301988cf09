#include "engine/model.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace sparkv {

namespace {

Architecture parse_architecture(const std::string& name, const std::string& source) {
    if (name == "llama") return Architecture::Llama;
    if (name == "qwen2") return Architecture::Qwen2;
    if (name == "qwen3") return Architecture::Qwen3;
    fail("{}: unsupported architecture '{}' (SparKV runs llama, qwen2 and qwen3)", source, name);
}

int positive_int(uint64_t value, const char* what, const std::string& source) {
    if (value == 0 || value > (1u << 24)) fail("{}: {} = {} is out of range", source, what, value);
    return static_cast<int>(value);
}

}  // namespace

std::string_view architecture_name(Architecture arch) {
    switch (arch) {
        case Architecture::Llama:
            return "llama";
        case Architecture::Qwen2:
            return "qwen2";
        case Architecture::Qwen3:
            return "qwen3";
    }
    return "unknown";
}

std::vector<std::string> unsupported_tensor_types(const GgufFile& file) {
    std::vector<std::string> out;
    for (const auto& t : file.tensors()) {
        const auto& traits = ggml_traits(t.type);
        if (traits.computable) continue;
        const std::string name(traits.name);
        if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
    }
    return out;
}

std::string supported_weight_types() {
    std::string out;
    for (uint32_t id = 0; id < 64; ++id) {
        const auto traits = ggml_type_traits(id);
        if (traits && traits->computable)
            out += (out.empty() ? "" : ", ") + std::string(traits->name);
    }
    return out;
}

Model::Model(GgufFile file) : file_(std::move(file)) {}

std::unique_ptr<Model> Model::load(const std::string& path) {
    std::unique_ptr<Model> model(new Model(GgufFile::open(path)));
    // Refuse a file with any tensor type SparKV has no kernels for before doing any work, naming
    // every such type and one tensor of each.
    if (const auto bad = unsupported_tensor_types(model->file_); !bad.empty()) {
        std::string detail;
        for (const auto& name : bad) {
            for (const auto& t : model->file_.tensors()) {
                if (ggml_traits(t.type).name != name) continue;
                detail += fmt::format("{}{} (e.g. '{}')", detail.empty() ? "" : ", ", name, t.name);
                break;
            }
        }
        fail("{}: tensor type{} {} cannot be computed by SparKV (it runs {})", path,
             bad.size() > 1 ? "s" : "", detail, supported_weight_types());
    }
    model->load_config();
    model->load_weights();
    model->tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_gguf(model->file_));
    if (model->tokenizer_->n_vocab() < model->config_.n_vocab)
        fail("{}: the tokenizer has {} tokens but the output layer produces {}", path,
             model->tokenizer_->n_vocab(), model->config_.n_vocab);
    // Hash the whole file: weights, tokenizer and hyper-parameters all change the KV. XXH3 runs
    // at memory speed, and the pages are needed for inference anyway.
    model->fingerprint_ = XXH3_64bits(model->file_.bytes(), model->file_.file_size());
    return model;
}

void Model::load_config() {
    const auto& src = file_.source();
    config_.arch_name = file_.get_string("general.architecture");
    config_.arch = parse_architecture(config_.arch_name, src);
    config_.name = file_.get_string("general.name", "");
    const std::string a = config_.arch_name + ".";
    config_.n_layer = positive_int(file_.get_uint(a + "block_count"), "block_count", src);
    config_.n_embd = positive_int(file_.get_uint(a + "embedding_length"), "embedding_length", src);
    config_.n_head = positive_int(file_.get_uint(a + "attention.head_count"), "head_count", src);
    config_.n_kv_head = positive_int(
        file_.get_uint(a + "attention.head_count_kv", static_cast<uint64_t>(config_.n_head)),
        "head_count_kv", src);
    config_.n_ff =
        positive_int(file_.get_uint(a + "feed_forward_length"), "feed_forward_length", src);
    config_.n_ctx_train =
        positive_int(file_.get_uint(a + "context_length", 4096), "context_length", src);
    config_.rms_eps =
        static_cast<float>(file_.get_float(a + "attention.layer_norm_rms_epsilon", 1e-5));
    if (config_.n_head % config_.n_kv_head != 0)
        fail("{}: head_count {} is not a multiple of head_count_kv {}", src, config_.n_head,
             config_.n_kv_head);
    const uint64_t default_head_dim = static_cast<uint64_t>(config_.n_embd / config_.n_head);
    config_.head_dim = positive_int(file_.get_uint(a + "attention.key_length", default_head_dim),
                                    "key_length", src);
    if (file_.get_uint(a + "attention.value_length", static_cast<uint64_t>(config_.head_dim)) !=
        static_cast<uint64_t>(config_.head_dim))
        fail("{}: key and value head sizes differ; SparKV needs them equal", src);
    if (config_.head_dim % 2 != 0) fail("{}: head size {} is odd", src, config_.head_dim);

    auto& rope = config_.rope;
    rope.n_rot = positive_int(
        file_.get_uint(a + "rope.dimension_count", static_cast<uint64_t>(config_.head_dim)),
        "rope.dimension_count", src);
    if (rope.n_rot > config_.head_dim || rope.n_rot % 2 != 0)
        fail("{}: rope.dimension_count {} does not fit head size {}", src, rope.n_rot,
             config_.head_dim);
    rope.freq_base = static_cast<float>(file_.get_float(a + "rope.freq_base", 10000.0));
    rope.neox = config_.arch != Architecture::Llama;
    rope.freq_scale = 1.0f;
    const std::string scaling = file_.get_string(a + "rope.scaling.type", "none");
    if (scaling == "linear") {
        const double factor = file_.get_float(a + "rope.scaling.factor", 1.0);
        if (!(factor > 0)) fail("{}: rope.scaling.factor must be positive", src);
        rope.freq_scale = static_cast<float>(1.0 / factor);
    } else if (scaling != "none" && scaling != "llama3") {
        // llama3 scaling arrives as the rope_freqs tensor; other schemes (YaRN, ...) are rejected
        // rather than approximated.
        fail("{}: RoPE scaling '{}' is not supported", src, scaling);
    }
}

void check_context_length(const ModelConfig& config, int64_t positions, bool allow_longer,
                          std::string_view what) {
    if (positions <= config.n_ctx_train || allow_longer) return;
    fail(
        "{}: {} positions, more than the model's {}-token context; shorten the input, or "
        "allow it with --allow-long-context (allow_long_context in the API; the model was not "
        "trained past {} positions, so quality may drop)",
        what, positions, config.n_ctx_train, config.n_ctx_train);
}

}  // namespace sparkv

namespace sparkv {

namespace {

class WeightBinder {
  public:
    explicit WeightBinder(const GgufFile& file) : file_(file) {}

    const GgufTensorInfo* find(const std::string& name) const { return file_.find_tensor(name); }

    kernels::Matrix matrix(const std::string& name, int64_t cols, int64_t rows) const {
        const GgufTensorInfo* t = find(name);
        if (!t) fail("{}: missing tensor '{}'", file_.source(), name);
        return bind(*t, cols, rows);
    }

    kernels::Matrix bind(const GgufTensorInfo& t, int64_t cols, int64_t rows) const {
        if (t.ne[0] != cols || t.rows() != rows || t.n_dims > 2)
            fail("{}: tensor '{}' has shape {}, expected [{}, {}]", file_.source(), t.name,
                 t.shape_string(), cols, rows);
        const auto& traits = ggml_traits(t.type);
        if (!traits.computable)
            fail("{}: tensor '{}' has type {}, which SparKV cannot compute with", file_.source(),
                 t.name, traits.name);
        kernels::Matrix m;
        m.type = t.type;
        m.data = t.data;
        m.cols = cols;
        m.rows = rows;
        m.row_bytes = ggml_row_bytes(t.type, cols);
        return m;
    }

    // Small vectors (norm weights, biases) are converted to fp32 once.
    std::vector<float> vector(const std::string& name, int64_t n, bool required = true) const {
        const GgufTensorInfo* t = find(name);
        if (!t) {
            if (required) fail("{}: missing tensor '{}'", file_.source(), name);
            return {};
        }
        if (t->elements() != n)
            fail("{}: tensor '{}' has shape {}, expected [{}]", file_.source(), name,
                 t->shape_string(), n);
        if (!ggml_traits(t->type).computable)
            fail("{}: tensor '{}' has unsupported type {}", file_.source(), name,
                 ggml_traits(t->type).name);
        std::vector<float> out(static_cast<size_t>(n));
        kernels::dequantize_row(t->type, t->data, out.data(), n);
        return out;
    }

  private:
    const GgufFile& file_;
};

}  // namespace

void Model::load_weights() {
    const WeightBinder w(file_);
    const auto& c = config_;
    const GgufTensorInfo* embd = w.find("token_embd.weight");
    if (!embd) fail("{}: missing tensor 'token_embd.weight'", file_.source());
    token_embd_ = w.bind(*embd, c.n_embd, embd->rows());
    config_.n_vocab = static_cast<int>(token_embd_.rows);
    output_norm_ = w.vector("output_norm.weight", c.n_embd);
    // Tied embeddings: without output.weight the LM head is the embedding matrix.
    output_ =
        w.find("output.weight") ? w.matrix("output.weight", c.n_embd, c.n_vocab) : token_embd_;

    if (w.find("rope_freqs.weight")) {
        rope_freq_factors_ = w.vector("rope_freqs.weight", c.rope.n_rot / 2);
        for (float f : rope_freq_factors_)
            if (!(f > 0) || !std::isfinite(f))
                fail("{}: rope_freqs.weight holds a non-positive factor", file_.source());
        config_.rope.freq_factors = rope_freq_factors_.data();
    }

    layers_.resize(static_cast<size_t>(c.n_layer));
    for (int l = 0; l < c.n_layer; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        LayerWeights& L = layers_[static_cast<size_t>(l)];
        L.attn_norm = w.vector(p + "attn_norm.weight", c.n_embd);
        L.wq = w.matrix(p + "attn_q.weight", c.n_embd, c.q_dim());
        L.wk = w.matrix(p + "attn_k.weight", c.n_embd, c.kv_dim());
        L.wv = w.matrix(p + "attn_v.weight", c.n_embd, c.kv_dim());
        L.wo = w.matrix(p + "attn_output.weight", c.q_dim(), c.n_embd);
        const bool biases = c.arch == Architecture::Qwen2;
        L.bq = w.vector(p + "attn_q.bias", c.q_dim(), biases);
        L.bk = w.vector(p + "attn_k.bias", c.kv_dim(), biases);
        L.bv = w.vector(p + "attn_v.bias", c.kv_dim(), biases);
        const bool qk_norm = c.arch == Architecture::Qwen3;
        L.q_norm = w.vector(p + "attn_q_norm.weight", c.head_dim, qk_norm);
        L.k_norm = w.vector(p + "attn_k_norm.weight", c.head_dim, qk_norm);
        L.ffn_norm = w.vector(p + "ffn_norm.weight", c.n_embd);
        L.gate = w.matrix(p + "ffn_gate.weight", c.n_embd, c.n_ff);
        L.up = w.matrix(p + "ffn_up.weight", c.n_embd, c.n_ff);
        L.down = w.matrix(p + "ffn_down.weight", c.n_ff, c.n_embd);
    }
}

size_t Model::weight_bytes() const {
    size_t total = 0;
    for (const auto& t : file_.tensors()) total += t.bytes;
    return total;
}

}  // namespace sparkv
