// Small random-weight GGUF models, written with SparKV's own GGUF writer, for tests and for
// comparisons with llama.cpp on every architecture and tensor type the engine supports.
#pragma once

#include <cstdint>
#include <string>

#include "engine/ggml_types.h"

namespace sparkv {

struct RandomModelSpec {
    std::string arch = "llama";             // llama, qwen2 or qwen3
    GgmlType weight_type = GgmlType::Q8_0;  // type of the 2-D weight matrices
    GgmlType embedding_type = GgmlType::Q8_0;
    // Per-tensor types instead of weight_type for every matrix: "" (none) or "q4_k_m", the mix
    // llama.cpp's Q4_K_M gives a model, with its fallback to legacy types for rows that are not a
    // multiple of 256 (Q4_K -> Q5_0, Q6_K -> Q8_0): Q4_K for attn_q/k/output and ffn_gate/up,
    // Q6_K / Q4_K alternating by layer for attn_v and ffn_down, Q6_K for an untied output.
    std::string mix;
    bool tied_output = true;  // no output.weight: the LM head is the embedding
    // Multiplies the untied LM head's init scale: logits have a standard deviation of about
    // output_scale, so > 1 gives the peaked next-token distributions of a trained model.
    float output_scale = 1.0f;
    int n_layer = 4;
    int n_embd = 256;  // multiple of 256 so that K-quant rows fit
    int n_head = 4;
    int n_kv_head = 2;
    int head_dim = 64;
    int n_ff = 512;
    int n_ctx = 4096;
    float rope_base = 10000.0f;
    uint64_t seed = 1;
};

// Builds the model in memory and writes it to `path` (atomically). The vocabulary is a small
// byte-level BPE (gpt2 model, 256 byte tokens, a few hundred merges, <|endoftext|>), which both
// SparKV and llama.cpp load.
void write_random_model(const RandomModelSpec& spec, const std::string& path);

// The type `spec` gives the matrix `tensor` ("blk.3.ffn_down.weight", "output.weight", ...) with
// rows of `cols` elements.
GgmlType random_model_tensor_type(const RandomModelSpec& spec, const std::string& tensor,
                                  int64_t cols);

}  // namespace sparkv
