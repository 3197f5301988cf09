#include "common/statistics.h"

#include <algorithm>

namespace sparkv {

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const double pos = p * static_cast<double>(v.size() - 1);
    const auto i = static_cast<size_t>(pos);
    const double frac = pos - static_cast<double>(i);
    return i + 1 < v.size() ? v[i] * (1 - frac) + v[i + 1] * frac : v[i];
}

double median(std::vector<double> v) {
    return percentile(std::move(v), 0.5);
}

}  // namespace sparkv
