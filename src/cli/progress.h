// A one-line progress bar on stderr, drawn only when stderr is a terminal.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>

namespace sparkv::cli {

class ProgressBar {
  public:
    explicit ProgressBar(std::string label)
        : label_(std::move(label)), enabled_(isatty(STDERR_FILENO)) {}
    ~ProgressBar() { finish(); }

    void update(long done, long total, double seconds) {
        if (!enabled_ || total <= 0) return;
        constexpr int kWidth = 30;
        const int filled = static_cast<int>(kWidth * done / total);
        const double eta =
            done > 0 ? seconds * static_cast<double>(total - done) / static_cast<double>(done) : 0;
        std::fprintf(stderr, "\r%s [%.*s%*s] %ld/%ld  %.1fs elapsed, ~%.0fs left ", label_.c_str(),
                     filled, "##############################", kWidth - filled, "", done, total,
                     seconds, eta);
        std::fflush(stderr);
        drawn_ = true;
    }

    void finish() {
        if (drawn_) std::fprintf(stderr, "\n");
        drawn_ = false;
    }

  private:
    std::string label_;
    bool enabled_;
    bool drawn_ = false;
};

}  // namespace sparkv::cli
