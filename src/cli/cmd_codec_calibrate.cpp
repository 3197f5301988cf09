// `sparkv codec-calibrate`: measures a model's KV sensitivity on calibration text and writes its
// codec profile (the per-layer widths of the calibrated levels c4..c8, see
// cloud/codec_calibrate.h).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "cloud/codec_calibrate.h"
#include "codec/profile.h"
#include "common/error.h"
#include "common/paths.h"
#include "engine/convert.h"
#include "engine/prompt.h"

namespace sparkv::cli {

namespace {

struct CalibrateCliOptions {
    std::string model;
    std::vector<std::string> docs;
    std::string out;
    std::string default_level;
    bool deployed = false;
    CalibrateOptions cal;
};

int run(const CalibrateCliOptions& opt) {
    std::optional<codec::Level> default_level;
    if (!opt.default_level.empty()) default_level = codec::level_from_name(opt.default_level);
    const std::string model_path = resolve_model_path(opt.model);
    const auto model = Model::load(model_path);
    std::vector<std::vector<int32_t>> docs;
    for (const auto& path : opt.docs) {
        std::ifstream f(path, std::ios::binary);
        if (!f) fail("cannot read calibration document {}", path);
        std::ostringstream text;
        text << f.rdbuf();
        docs.push_back(context_tokens(*model, text.str(), PromptFormat::raw));
    }
    CalibrateOptions cal = opt.cal;
    cal.on_stage = [](const std::string& s) {
        std::fprintf(stderr, "codec-calibrate: %s\n", s.c_str());
    };

    codec::CodecProfile profile;
    if (opt.deployed) {
        profile = calibrate_codec(*model, model->fingerprint(), docs, cal);
    } else {
        // The F32 copy's fp32 activations show the codec's own effect; the quantised model's
        // activation rounding would add a noise floor to every probe.
        const auto dir = std::filesystem::temp_directory_path() /
                         ("sparkv-codec-calibrate-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir);
        struct Cleanup {
            std::filesystem::path p;
            ~Cleanup() {
                std::error_code ec;
                std::filesystem::remove_all(p, ec);
            }
        } cleanup{dir};
        const std::string path = (dir / "model-f32.gguf").string();
        cal.on_stage("writing an F32 copy of the model");
        write_converted_model(model->file(), GgmlType::F32, path);
        const auto precise = Model::load(path);
        profile = calibrate_codec(*precise, model->fingerprint(), docs, cal);
    }
    if (default_level) {
        if (codec::level_info(*default_level).calibrated() && !profile.find(*default_level))
            fail("--default-level {}: the profile has no table for it (c8 may not fit its budget)",
                 opt.default_level);
        profile.default_level = default_level;
    }
    const std::string out =
        opt.out.empty() ? codec::default_profile_path(model->fingerprint()) : opt.out;
    codec::save_profile(profile, out);
    std::printf("codec profile %016llx for %s (%zu calibration documents) -> %s\n",
                static_cast<unsigned long long>(profile.hash()), model_path.c_str(), docs.size(),
                out.c_str());
    for (const auto& t : profile.levels)
        std::printf("  %-3s %5.2fx fp16  predicted KL %.2e  %s%s\n",
                    std::string(codec::level_name(t.level)).c_str(), t.ratio_vs_fp16,
                    t.predicted_kl, codec::format_layer_bits(t.bits).c_str(),
                    t.head_bits.empty() ? "" : "  (widest head per layer; per head in the file)");
    return 0;
}

}  // namespace

CommandRunner add_codec_calibrate_command(CLI::App& app) {
    auto opt = std::make_shared<CalibrateCliOptions>();
    auto* cmd = app.add_subcommand(
        "codec-calibrate",
        "Measure a model's KV sensitivity on calibration text and write its codec profile");
    cmd->add_option("--model", opt->model,
                    "GGUF file or known model name (default: the reference model)");
    cmd->add_option("--docs", opt->docs,
                    "Calibration text files (keep them disjoint from evaluation text)")
        ->required();
    cmd->add_option("--out", opt->out,
                    "Profile file (default: the model's profile in the cache, used by ingest)");
    cmd->add_option("--context-tokens", opt->cal.context_tokens, "Context tokens per document")
        ->capture_default_str();
    cmd->add_option("--continuation-tokens", opt->cal.continuation_tokens,
                    "Continuation tokens scored per probe")
        ->capture_default_str();
    cmd->add_option("--chunk-tokens", opt->cal.chunk_tokens, "Tokens per unit")
        ->capture_default_str();
    cmd->add_option("--probe-bits", opt->cal.probe_bits, "Widths of the sensitivity probes")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_option("--sink-tokens", opt->cal.sink_tokens,
                    "First tokens of the context kept exact (attention sinks)")
        ->capture_default_str();
    cmd->add_flag("--per-head", opt->cal.per_head,
                  "Probe and choose widths per KV head instead of per layer (3x the probes)");
    cmd->add_option("--salient-per-mille", opt->cal.salient_per_mille,
                    "Per layer, this many per mille of the context's tokens (those its last "
                    "queries attend to most) keep 8 bits in every level, inside its byte budget "
                    "(profile version 3); 0 = none")
        ->check(CLI::Range(0, 999))
        ->capture_default_str();
    cmd->add_option("--saliency-queries", opt->cal.saliency_queries,
                    "How many of the context's last tokens rank the salient tokens")
        ->check(CLI::Range(1, 1 << 20))
        ->capture_default_str();
    cmd->add_option("--default-level", opt->default_level,
                    "Record this level as the model's default (the smallest one you checked "
                    "with codec-bench on text disjoint from the calibration text)");
    cmd->add_option("--threads,-t", opt->cal.threads, "Model threads");
    cmd->add_flag("--deployed", opt->deployed,
                  "Measure on the model as given instead of its F32 copy");
    return [opt] { return run(*opt); };
}

}  // namespace sparkv::cli
