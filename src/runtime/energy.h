// Energy per request: measured time x modelled power (DESIGN.md §4). It is a model, and every
// output that shows a figure from it says so.
//
//   E = P_idle * TTFT                                   (the device is on while it waits)
//     + P_core * (compute busy s * compute threads + decode busy s)
//     + P_radio(throughput) * receive time + tail power * tail time (+ promotion)
//
// The radio model is Huang et al., "A Close Examination of Performance and Power
// Characteristics of 4G LTE Networks", MobiSys 2012: receive power P = alpha_d * Mbit/s + beta
// while data flows, then a high-power tail after the last packet. Device constants are in
// energy.cpp, each with its source.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "runtime/timeline.h"

namespace sparkv::runtime {

struct RadioModel {
    std::string name;  // "LTE", "Wi-Fi"
    double alpha_down_w_per_mbps = 0;
    double beta_w = 0;  // receiving, independent of throughput
    double tail_w = 0;  // after the last packet, for tail_s
    double tail_s = 0;
    double promotion_w = 0;  // waking the radio before the first packet, for promotion_s
    double promotion_s = 0;
};

struct PowerProfile {
    std::string name;  // phone | jetson | laptop
    std::string description;
    double core_active_w = 0;  // one busy CPU core above idle
    double idle_w = 0;         // the whole device, awake, nothing running
    RadioModel radio;
    std::string sources;  // where the constants come from
};

const PowerProfile& power_profile(std::string_view name);  // throws Error listing the names
std::vector<std::string> power_profile_names();

struct EnergyBreakdown {
    double total_j = 0;
    double idle_j = 0;
    double cpu_j = 0;
    double radio_j = 0;  // receiving + tail + promotion
    double receive_s = 0;
    std::string profile;
    std::string note = "modelled: measured time x device power model";
};

struct EnergyInputs {
    double ttft_s = 0;
    double compute_busy_s = 0;
    int compute_threads = 1;
    double decode_busy_s = 0;
    // Intervals during which bytes were arriving (seconds since the request started) and the
    // bytes they carried; overlapping intervals count once.
    std::vector<std::pair<double, double>> receive_intervals;
    uint64_t bytes_received = 0;
};

EnergyBreakdown model_energy(const PowerProfile& profile, const EnergyInputs& inputs);

// Receive intervals from a timeline: every streamed unit from request to last byte, plus the
// phases that fetched something (manifest, token ids).
std::vector<std::pair<double, double>> receive_intervals(const Timeline& timeline);

}  // namespace sparkv::runtime
