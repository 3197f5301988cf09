// Order statistics for benchmark and evaluation results.
#pragma once

#include <vector>

namespace sparkv {

// Linear interpolation between the closest ranks; 0 for an empty input.
double percentile(std::vector<double> values, double p);
double median(std::vector<double> values);

}  // namespace sparkv
