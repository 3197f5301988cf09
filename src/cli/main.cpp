#include <cstdio>
#include <exception>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "common/error.h"

int main(int argc, char** argv) {
    CLI::App app{"SparKV: stream or compute every KV unit of a long context, whichever is faster"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "sparkv " SPARKV_VERSION);

    std::vector<std::pair<CLI::App*, sparkv::cli::CommandRunner>> commands;
    auto add = [&](sparkv::cli::CommandRunner (*adder)(CLI::App&)) {
        auto runner = adder(app);  // adds exactly one subcommand
        commands.emplace_back(app.get_subcommands({}).back(), std::move(runner));
    };
    add(sparkv::cli::add_model_command);
    add(sparkv::cli::add_generate_command);
    add(sparkv::cli::add_ingest_command);
    add(sparkv::cli::add_codec_bench_command);
    add(sparkv::cli::add_codec_calibrate_command);
    add(sparkv::cli::add_serve_command);
    add(sparkv::cli::add_fetch_command);
    add(sparkv::cli::add_ask_command);
    add(sparkv::cli::add_profile_command);
    add(sparkv::cli::add_bench_command);
    add(sparkv::cli::add_demo_command);
    add(sparkv::cli::add_gc_command);
    add(sparkv::cli::add_keygen_command);
    add(sparkv::cli::add_eval_command);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    try {
        for (auto& [sub, run] : commands)
            if (sub->parsed()) return run();
    } catch (const sparkv::Error& e) {
        std::fprintf(stderr, "sparkv: error: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sparkv: unexpected error: %s\n", e.what());
        return 2;
    }
    return 0;
}
