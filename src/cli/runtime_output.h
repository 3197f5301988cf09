// How the runtime's results are shown: the JSON object of `ask --json` (its keys are an
// interface), the human TTFT breakdown, and the timeline picture. Shared by ask, bench and demo.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/device.h"

namespace sparkv::cli {

nlohmann::json ask_result_json(const runtime::AskResult& r);
void print_ask_breakdown(const runtime::AskResult& r, std::FILE* out);
// capacity: the link's capacity over the run (bytes/s samples), when the caller knows it.
void write_timeline_svg(const runtime::AskResult& r, const std::string& path,
                        const std::vector<runtime::BandwidthSample>& capacity);

}  // namespace sparkv::cli
