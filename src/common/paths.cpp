#include "common/paths.h"

#include <cstdlib>
#include <filesystem>

#include "common/error.h"

namespace sparkv {

namespace {

constexpr KnownModel kKnownModels[] = {
    {"smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf",
     "SmolLM2-135M-Instruct, Q4_1 (the reference model)"},
    {"qwen2.5-0.5b", "Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf",
     "Qwen2.5-Coder-0.5B-Instruct, Q4_K_M"},
};

std::string known_names() {
    std::string out;
    for (const auto& m : kKnownModels) out += (out.empty() ? "" : ", ") + std::string(m.name);
    return out;
}

}  // namespace

std::string cache_dir() {
    if (const char* dir = std::getenv("SPARKV_CACHE"); dir && *dir) return dir;
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
        return std::string(xdg) + "/sparkv";
    if (const char* home = std::getenv("HOME"); home && *home)
        return std::string(home) + "/.cache/sparkv";
    return "/tmp/sparkv-cache";
}

std::span<const KnownModel> known_models() {
    return kKnownModels;
}

const KnownModel* find_known_model(std::string_view name) {
    for (const auto& m : kKnownModels)
        if (m.name == name) return &m;
    return nullptr;
}

std::string known_model_path(const KnownModel& model) {
    return cache_dir() + "/models/" + std::string(model.file);
}

std::string resolve_model_path(std::string_view name_or_path) {
    const KnownModel* known =
        name_or_path.empty() ? &kKnownModels[0] : find_known_model(name_or_path);
    if (known) {
        std::string path = known_model_path(*known);
        if (!std::filesystem::exists(path))
            fail("model {} ({}) is not in the cache at {}; run `sparkv model --fetch {}`",
                 known->name, known->description, path, known->name);
        return path;
    }
    const std::string path(name_or_path);
    if (!std::filesystem::is_regular_file(path))
        fail("model '{}' is neither a GGUF file nor a known model name ({})", path, known_names());
    return path;
}

std::string reference_model_path() {
    return known_model_path(kKnownModels[0]);
}

std::string demo_text_path() {
    return cache_dir() + "/texts/lincoln-1862-state-of-the-union.txt";
}

std::string fetch_script_path() {
    namespace fs = std::filesystem;
    // Installed: <prefix>/bin/sparkv beside <prefix>/share/sparkv/fetch_assets.py, wherever the
    // prefix was moved. Only a binary inside the build tree falls back to the sources it was built
    // from, so an installed or copied binary never depends on them.
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    const fs::path installed =
        exe.parent_path().parent_path() / "share" / "sparkv" / "fetch_assets.py";
    if (!ec && fs::is_regular_file(installed, ec)) return installed.string();
    const std::string build_dir = SPARKV_BINARY_DIR;
    const fs::path source = fs::path(SPARKV_SOURCE_DIR) / "scripts" / "fetch_assets.py";
    if (exe.string().starts_with(build_dir + "/") && fs::is_regular_file(source, ec))
        return source.string();
    fail("the fetch script is missing: expected {} (installed with the binary)",
         installed.string());
}

std::string shipped_data_path(std::string_view relative) {
    namespace fs = std::filesystem;
    // Same rule as the fetch script's: beside an installed binary, or in the sources for a
    // binary inside the build tree.
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    const fs::path installed = exe.parent_path().parent_path() / "share" / "sparkv" / relative;
    if (!ec && fs::is_regular_file(installed, ec)) return installed.string();
    const std::string build_dir = SPARKV_BINARY_DIR;
    const fs::path source = fs::path(SPARKV_SOURCE_DIR) / "share" / relative;
    if (exe.string().starts_with(build_dir + "/") && fs::is_regular_file(source, ec))
        return source.string();
    return "";
}

std::string require_reference_model() {
    return resolve_model_path("");
}

}  // namespace sparkv
