// A fresh directory under the system temp dir, removed with everything in it when the object
// goes away (bench and demo keep their throwaway stores there).
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

#include "common/error.h"

namespace sparkv {

class TempDirectory {
  public:
    explicit TempDirectory(const std::string& prefix) {
        std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
        if (!mkdtemp(tmpl.data())) fail("cannot create a temporary directory for {}", prefix);
        path_ = tmpl;
    }
    ~TempDirectory() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDirectory(const TempDirectory&) = delete;
    TempDirectory& operator=(const TempDirectory&) = delete;
    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

}  // namespace sparkv
