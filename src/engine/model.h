// A Llama-family decoder loaded from GGUF: configuration, weights bound to the memory-mapped file
// (never copied), and the tokenizer. Immutable after load and shared by every Engine.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/gguf.h"
#include "engine/kernels/kernels.h"
#include "engine/tokenizer/tokenizer.h"

namespace sparkv {

enum class Architecture { Llama, Qwen2, Qwen3 };

struct ModelConfig {
    Architecture arch = Architecture::Llama;
    std::string arch_name;  // as in general.architecture
    std::string name;       // general.name
    int n_layer = 0;
    int n_embd = 0;
    int n_head = 0;
    int n_kv_head = 0;
    int head_dim = 0;
    int n_ff = 0;
    int n_vocab = 0;
    int n_ctx_train = 0;
    float rms_eps = 1e-5f;
    kernels::RopeParams rope;  // freq_factors points into the model's weights when present

    int q_dim() const { return n_head * head_dim; }
    int kv_dim() const { return n_kv_head * head_dim; }
};

// Weights of one transformer block. Matrices point into the mapping; the small vectors (norms,
// biases) are converted to fp32 at load.
struct LayerWeights {
    std::vector<float> attn_norm;
    kernels::Matrix wq, wk, wv, wo;
    std::vector<float> bq, bk, bv;      // Qwen2 only (empty otherwise)
    std::vector<float> q_norm, k_norm;  // Qwen3 only: per-head RMSNorm before RoPE
    std::vector<float> ffn_norm;
    kernels::Matrix gate, up, down;
};

class Model {
  public:
    // Loads and validates a GGUF model; throws Error naming the file and the problem.
    static std::unique_ptr<Model> load(const std::string& path);

    const ModelConfig& config() const { return config_; }
    const GgufFile& file() const { return file_; }
    const Tokenizer& tokenizer() const { return *tokenizer_; }
    const LayerWeights& layer(int l) const { return layers_[static_cast<size_t>(l)]; }
    const kernels::Matrix& token_embedding() const { return token_embd_; }
    const kernels::Matrix& output() const { return output_; }
    const std::vector<float>& output_norm() const { return output_norm_; }

    // Identifies the exact weights and tokenizer: a 64-bit hash of the file contents. KV produced
    // by one model must never be imported into another; the codec and store carry this value.
    uint64_t fingerprint() const { return fingerprint_; }

    size_t weight_bytes() const;

  private:
    explicit Model(GgufFile file);
    void load_config();
    void load_weights();

    GgufFile file_;
    ModelConfig config_;
    std::vector<LayerWeights> layers_;
    kernels::Matrix token_embd_;
    kernels::Matrix output_;
    std::vector<float> output_norm_;
    std::vector<float> rope_freq_factors_;
    std::unique_ptr<Tokenizer> tokenizer_;
    uint64_t fingerprint_ = 0;
};

std::string_view architecture_name(Architecture arch);

// The tensor types of `file` that SparKV cannot compute with, each named once in file order
// (empty: every tensor is supported). Model::load checks this before anything else.
std::vector<std::string> unsupported_tensor_types(const GgufFile& file);

// The weight types SparKV computes with, for messages: "F32, F16, BF16, Q4_0, ...".
std::string supported_weight_types();

// The one rule for running past the model's training context (generate and ingest alike): more
// than n_ctx_train positions is an error naming the option that allows it, unless allow_longer
// (the engine runs fine there, but the model was never trained on such positions: RoPE
// extrapolation, quality not guaranteed). `what` names the caller and its positions, e.g.
// "generate: prompt (9402 tokens) + answer (16)".
void check_context_length(const ModelConfig& config, int64_t positions, bool allow_longer,
                          std::string_view what);

}  // namespace sparkv
