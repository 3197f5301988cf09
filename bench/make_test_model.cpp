// make_test_model: writes a small random-weight GGUF model with SparKV's own GGUF writer
// (write_random_model), so that llama.cpp can be run on exactly the file the parity test rebuilds.
//
//   make_test_model --arch llama|qwen2|qwen3 --type Q4_K [--embedding-type Q8_0] [--untied]
//                   [--output-scale X] [--seed S] --out FILE
//   make_test_model --fingerprint-of FILE
//
// Prints one JSON object: {"path", "fingerprint" (16 hex digits), "spec" (every field)}; with
// --fingerprint-of, only path and fingerprint of an existing GGUF file.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "common/error.h"
#include "engine/model.h"
#include "random_model_json.h"
#include "testkit/random_model.h"

namespace {

using namespace sparkv;

struct Options {
    std::string arch = "llama";
    std::string type = "Q8_0";
    std::string embedding_type;  // default: the spec's default
    std::string mix;
    int n_embd = 0;  // 0: the spec's default
    int n_head = 0;
    int n_kv_head = 0;
    bool untied = false;
    float output_scale = 1.0f;
    uint64_t seed = 1;
    std::string out;
    std::string fingerprint_of;
};

int run(const Options& opt) {
    nlohmann::json result;
    if (!opt.fingerprint_of.empty()) {
        const auto model = Model::load(opt.fingerprint_of);
        result = {{"path", opt.fingerprint_of},
                  {"fingerprint", fingerprint_hex(model->fingerprint())}};
    } else {
        if (opt.out.empty()) fail("give --out FILE (or --fingerprint-of FILE)");
        RandomModelSpec spec;
        spec.arch = opt.arch;
        spec.weight_type = ggml_type_from_name(opt.type);
        if (!opt.embedding_type.empty())
            spec.embedding_type = ggml_type_from_name(opt.embedding_type);
        spec.mix = opt.mix;
        if (opt.n_embd > 0) spec.n_embd = opt.n_embd;
        if (opt.n_head > 0) spec.n_head = opt.n_head;
        if (opt.n_kv_head > 0) spec.n_kv_head = opt.n_kv_head;
        spec.tied_output = !opt.untied;
        spec.output_scale = opt.output_scale;
        spec.seed = opt.seed;
        write_random_model(spec, opt.out);
        // Load it back: proves the engine accepts the file and gives the fingerprint the test
        // checks.
        const auto model = Model::load(opt.out);
        result = {{"path", opt.out},
                  {"fingerprint", fingerprint_hex(model->fingerprint())},
                  {"spec", random_model_spec_to_json(spec)}};
    }
    std::printf("%s\n", result.dump().c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "Write a small random-weight GGUF model (SparKV's writer) and print its fingerprint"};
    Options opt;
    app.add_option("--arch", opt.arch, "llama, qwen2 or qwen3")->capture_default_str();
    app.add_option(
           "--type", opt.type,
           "Type of the weight matrices (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, "
           "Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS)")
        ->capture_default_str();
    app.add_option("--embedding-type", opt.embedding_type, "Type of token_embd (default Q8_0)");
    app.add_option("--mix", opt.mix,
                   "Per-tensor types like a llama.cpp file (q4_k_m) instead of --type everywhere");
    app.add_option("--n-embd", opt.n_embd,
                   "Model width (default 256; a width that is not a multiple of 256 makes --mix "
                   "fall back to legacy types)");
    app.add_option("--n-head", opt.n_head, "Query heads of 64 dimensions (default 4)");
    app.add_option("--n-kv-head", opt.n_kv_head, "KV heads (default 2)");
    app.add_flag("--untied", opt.untied,
                 "Write a separate output.weight of --type instead of tying it to the embedding");
    app.add_option("--output-scale", opt.output_scale,
                   "Scale of the untied LM head (logit standard deviation)")
        ->capture_default_str();
    app.add_option("--seed", opt.seed, "Weight seed")->capture_default_str();
    app.add_option("--out", opt.out, "GGUF file to write");
    app.add_option("--fingerprint-of", opt.fingerprint_of,
                   "Only print the fingerprint of this GGUF file")
        ->check(CLI::ExistingFile);
    CLI11_PARSE(app, argc, argv);
    try {
        return run(opt);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "make_test_model: %s\n", e.what());
        return 1;
    }
}
