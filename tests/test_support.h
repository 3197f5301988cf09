// Shared helpers for tests that need the reference model or scratch files.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "common/paths.h"

namespace sparkv::testing {

// Sanitizer builds (SPARKV_SANITIZE) run several times slower. Upper bounds on elapsed time that
// only guard against a hang or a missing delay get this much more room there, and none elsewhere.
#ifdef SPARKV_SANITIZED
inline constexpr double kSlowBuildFactor = 3.0;
#else
inline constexpr double kSlowBuildFactor = 1.0;
#endif

// The file of a known model (common/paths.h: "smollm2-135m", "qwen2.5-0.5b"). Without it the
// test is skipped, unless SPARKV_REQUIRE_MODEL=1 (as in CI, which fetches every known model
// first) turns the absence into a failure.
inline std::string known_model_or_skip(const std::string& name) {
    const KnownModel* known = find_known_model(name);
    if (!known) {
        ADD_FAILURE() << "no known model named " << name;
        return {};
    }
    const std::string path = known_model_path(*known);
    if (std::filesystem::exists(path)) return path;
    const char* require = std::getenv("SPARKV_REQUIRE_MODEL");
    if (require && std::string(require) == "1") {
        ADD_FAILURE() << "model " << name << " missing at " << path
                      << " (run `sparkv model --fetch`)";
    }
    return {};
}

inline std::string reference_model_or_skip() {
    return known_model_or_skip(std::string(known_models()[0].name));
}

#define SPARKV_REQUIRE_KNOWN_MODEL(var, name)                             \
    const std::string var = ::sparkv::testing::known_model_or_skip(name); \
    if (var.empty()) GTEST_SKIP() << (name) << " not fetched (sparkv model --fetch)"

#define SPARKV_REQUIRE_REFERENCE_MODEL(var) SPARKV_REQUIRE_KNOWN_MODEL(var, "smollm2-135m")

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// In a forked child: closes every inherited descriptor from 3 up except `keep`, so that a child
// that outlives a failed test holds nothing of its parent's (such as the CPU lock of a build
// wrapped in flock).
inline void close_inherited_fds(int keep = -1) {
    if (keep >= 3) {
        if (keep > 3) ::close_range(3, static_cast<unsigned>(keep - 1), 0);
        ::close_range(static_cast<unsigned>(keep + 1), ~0U, 0);
    } else {
        ::close_range(3, ~0U, 0);
    }
}

// A fresh directory under the system temp dir, removed when the object goes away.
class TempDir {
  public:
    TempDir() {
        auto base = std::filesystem::temp_directory_path() / "sparkv-test-XXXXXX";
        std::string tmpl = base.string();
        if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::string file(const std::string& name) const { return (path_ / name).string(); }

  private:
    std::filesystem::path path_;
};

}  // namespace sparkv::testing
