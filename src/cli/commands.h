// Each subcommand lives in its own file and registers itself on the CLI11 app. add_* declares the
// options and returns the function that runs the command once parsing succeeded.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace sparkv::cli {

using CommandRunner = std::function<int()>;

CommandRunner add_model_command(CLI::App& app);
CommandRunner add_generate_command(CLI::App& app);
CommandRunner add_serve_command(CLI::App& app);
CommandRunner add_ingest_command(CLI::App& app);
CommandRunner add_codec_bench_command(CLI::App& app);
CommandRunner add_codec_calibrate_command(CLI::App& app);
CommandRunner add_fetch_command(CLI::App& app);
CommandRunner add_ask_command(CLI::App& app);
CommandRunner add_profile_command(CLI::App& app);
CommandRunner add_bench_command(CLI::App& app);
CommandRunner add_demo_command(CLI::App& app);
CommandRunner add_gc_command(CLI::App& app);
CommandRunner add_keygen_command(CLI::App& app);
CommandRunner add_eval_command(CLI::App& app);

}  // namespace sparkv::cli
