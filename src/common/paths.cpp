#include "common/paths.h"

#include <cstdlib>
#include <filesystem>

#include "common/error.h"

namespace sparkv {

std::string cache_dir() {
    if (const char* dir = std::getenv("SPARKV_CACHE"); dir && *dir) return dir;
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
        return std::string(xdg) + "/sparkv";
    if (const char* home = std::getenv("HOME"); home && *home)
        return std::string(home) + "/.cache/sparkv";
    return "/tmp/sparkv-cache";
}

std::string reference_model_path() {
    return cache_dir() + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

std::string demo_text_path() {
    return cache_dir() + "/texts/lincoln-1862-state-of-the-union.txt";
}

std::string fetch_script_path() {
    return std::string(SPARKV_SOURCE_DIR) + "/scripts/fetch_assets.py";
}

std::string require_reference_model() {
    std::string path = reference_model_path();
    if (!std::filesystem::exists(path))
        fail("reference model not found at {}; run `sparkv model --fetch` (or pass --model PATH)",
             path);
    return path;
}

}  // namespace sparkv
