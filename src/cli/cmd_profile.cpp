// `sparkv profile`: measure this device's compute, decode and contention costs, fit the cost
// model, report its held-out accuracy, and save the profile that ask/bench load.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "cli/progress.h"
#include "common/error.h"
#include "common/paths.h"
#include "engine/model.h"
#include "runtime/profiler.h"

namespace sparkv::cli {

namespace {

struct ProfileCliOptions {
    std::string model;
    std::string out;
    int threads = 0;
    int samples = 0;
    bool full = false;
    bool no_contention = false;
    bool json = false;
};

int run(const ProfileCliOptions& opt) {
    const auto model = Model::load(resolve_model_path(opt.model));
    runtime::ProfileOptions po;
    po.threads = opt.threads;
    po.samples = opt.samples > 0 ? opt.samples : (opt.full ? 6000 : 600);
    po.contention = !opt.no_contention;
    po.max_span = std::min<int64_t>(8192, model->config().n_ctx_train);
    ProgressBar bar("profile");
    po.on_progress = [&](int done, int total, double s) { bar.update(done, total, s); };
    const auto profile = runtime::measure_device_profile(*model, po);
    bar.finish();
    const std::string path =
        opt.out.empty() ? runtime::device_profile_path(*model, profile.threads) : opt.out;
    if (const auto dir = std::filesystem::path(path).parent_path(); !dir.empty())
        std::filesystem::create_directories(dir);
    profile.save(path);

    const auto& acc = profile.compute.accuracy();
    if (opt.json) {
        nlohmann::json j = {{"path", path},
                            {"samples", profile.samples.size()},
                            {"threads", profile.threads},
                            {"seconds", profile.profiling_seconds},
                            {"mlp_mape", acc.mlp_mape},
                            {"analytic_mape", acc.analytic_mape},
                            {"chosen", acc.chosen},
                            {"train_samples", acc.train_samples},
                            {"test_samples", acc.test_samples},
                            {"decode_s_per_byte", profile.decode_s_per_byte},
                            {"decode_slowdown", profile.decode_slowdown},
                            {"project_s_per_token", profile.project_s_per_token},
                            {"finish_s", profile.finish_s}};
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("device profile: %s\n", path.c_str());
    std::printf("  %zu compute samples in %.0f s (%d threads, %s)\n", profile.samples.size(),
                profile.profiling_seconds, profile.threads, profile.cpu.c_str());
    std::printf(
        "  held-out MAPE on %zu samples: MLP 3-48-24-1 %.1f%%, analytic %.1f%% -> using %s\n",
        acc.test_samples, 100 * acc.mlp_mape, 100 * acc.analytic_mape, acc.chosen.c_str());
    std::printf("  decoder beside the compute lane costs it %.0f%% of the decoder's time\n",
                100 * profile.decode_slowdown);
    for (const auto& [level, rate] : profile.decode_s_per_byte)
        std::printf("  decode %-5s %6.0f MB/s of compressed input (one core)\n", level.c_str(),
                    1e-6 / rate);
    return 0;
}

}  // namespace

CommandRunner add_profile_command(CLI::App& app) {
    auto opt = std::make_shared<ProfileCliOptions>();
    auto* cmd = app.add_subcommand(
        "profile", "Measure this device's compute and decode costs and fit the cost model");
    cmd->add_option("--model", opt->model, "GGUF model (default: the reference model)");
    cmd->add_option("--out", opt->out,
                    "Where to write the profile (default: the cache, where ask "
                    "and bench look)");
    cmd->add_option("--threads,-t", opt->threads, "Compute lane threads (default: all cores)");
    cmd->add_option("--samples", opt->samples, "Compute samples (default 600; --full: 6000)");
    cmd->add_flag("--full", opt->full, "Take ~6,000 samples (the published estimator's size)");
    cmd->add_flag("--no-contention", opt->no_contention, "Skip the samples under background load");
    cmd->add_flag("--json", opt->json, "Print a JSON summary");
    return [opt] { return run(*opt); };
}

}  // namespace sparkv::cli
