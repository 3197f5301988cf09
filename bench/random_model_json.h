// JSON form of a RandomModelSpec, shared by make_test_model (which writes it into the llama.cpp
// parity fixtures) and the parity test (which rebuilds the model from it). Every field is
// written, so a fixture pins the whole spec even if the defaults change later.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "common/error.h"
#include "engine/ggml_types.h"
#include "testkit/random_model.h"

namespace sparkv {

inline nlohmann::json random_model_spec_to_json(const RandomModelSpec& s) {
    return {
        {"arch", s.arch},
        {"weight_type", std::string(ggml_traits(s.weight_type).name)},
        {"embedding_type", std::string(ggml_traits(s.embedding_type).name)},
        {"mix", s.mix},
        {"tied_output", s.tied_output},
        {"output_scale", s.output_scale},
        {"n_layer", s.n_layer},
        {"n_embd", s.n_embd},
        {"n_head", s.n_head},
        {"n_kv_head", s.n_kv_head},
        {"head_dim", s.head_dim},
        {"n_ff", s.n_ff},
        {"n_ctx", s.n_ctx},
        {"rope_base", s.rope_base},
        {"seed", s.seed},
    };
}

inline RandomModelSpec random_model_spec_from_json(const nlohmann::json& j) {
    try {
        RandomModelSpec s;
        s.arch = j.at("arch").get<std::string>();
        s.weight_type = ggml_type_from_name(j.at("weight_type").get<std::string>());
        s.embedding_type = ggml_type_from_name(j.at("embedding_type").get<std::string>());
        s.mix = j.value("mix", "");
        s.tied_output = j.at("tied_output").get<bool>();
        s.output_scale = j.at("output_scale").get<float>();
        s.n_layer = j.at("n_layer").get<int>();
        // Older fixtures lack "mix" (uniform types); every field the writer sets is stored.
        s.n_embd = j.at("n_embd").get<int>();
        s.n_head = j.at("n_head").get<int>();
        s.n_kv_head = j.at("n_kv_head").get<int>();
        s.head_dim = j.at("head_dim").get<int>();
        s.n_ff = j.at("n_ff").get<int>();
        s.n_ctx = j.at("n_ctx").get<int>();
        s.rope_base = j.at("rope_base").get<float>();
        s.seed = j.at("seed").get<uint64_t>();
        return s;
    } catch (const nlohmann::json::exception& e) {
        fail("random model spec {}: {}", j.dump(), e.what());
    }
}

// Fingerprints are 64-bit; JSON numbers lose bits in JavaScript, so they travel as hex strings.
inline std::string fingerprint_hex(uint64_t fingerprint) {
    return fmt::format("{:016x}", fingerprint);
}

}  // namespace sparkv
