#include "runtime/energy.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>

#include "common/error.h"

namespace sparkv::runtime {

namespace {

// LTE and Wi-Fi receive models: Huang et al., MobiSys 2012, Table 4 (alpha_d, beta) and
// Table 3 (LTE tail and promotion). The Wi-Fi tail is our assumption (a short power-save
// timeout), not a figure from that paper.
const RadioModel kLte{"LTE", 0.05197, 1.28804, 1.06004, 11.576, 1.2107, 0.2601};
const RadioModel kWifi{"Wi-Fi", 0.13701, 0.13286, 0.13286, 0.2, 0.0, 0.0};

const std::array kProfiles{
    PowerProfile{
        "phone", "smartphone: big Arm cores, LTE", 2.0, 0.9, kLte,
        "CPU: ~2 W per busy Cortex-A78/X1-class core at high clocks (AnandTech's SPEC2017 "
        "power measurements of Snapdragon 888 / Exynos 2100, 2021); idle: screen-on phone "
        "baseline ~0.9 W (same source's idle figures). Radio: Huang et al., MobiSys 2012 (LTE)."},
    PowerProfile{
        "jetson", "Jetson Orin Nano-class module: 6 Arm Cortex-A78AE cores, Wi-Fi", 0.9, 4.0, kWifi,
        "NVIDIA Jetson Orin Nano series data sheet: 7 W and 15 W module power modes for 6 "
        "Cortex-A78AE cores (~0.9 W per busy core within the 15 W mode, ~4 W module idle). "
        "Radio: Huang et al., MobiSys 2012 (Wi-Fi receive model)."},
    PowerProfile{
        "laptop", "thin-and-light laptop: 15 W x86 mobile CPU, Wi-Fi", 3.5, 3.0, kWifi,
        "Intel ARK: 15 W TDP class mobile processors (4 cores at sustained load ~3.5 W each); "
        "platform idle ~3 W (display and chipset). Radio: Huang et al., MobiSys 2012 (Wi-Fi)."},
};

}  // namespace

const PowerProfile& power_profile(std::string_view name) {
    for (const auto& p : kProfiles)
        if (p.name == name) return p;
    fail("unknown device profile '{}' (choose {})", name, fmt::join(power_profile_names(), ", "));
}

std::vector<std::string> power_profile_names() {
    std::vector<std::string> names;
    for (const auto& p : kProfiles) names.push_back(p.name);
    return names;
}

std::vector<std::pair<double, double>> receive_intervals(const Timeline& timeline) {
    std::vector<std::pair<double, double>> out;
    for (const auto& e : timeline.events()) {
        if (e.kind == EventKind::stream) out.emplace_back(e.start_s, e.arrive_s);
        if (e.kind == EventKind::phase && (e.note == "manifest" || e.note == "tokens"))
            out.emplace_back(e.start_s, e.end_s);
    }
    return out;
}

EnergyBreakdown model_energy(const PowerProfile& profile, const EnergyInputs& in) {
    EnergyBreakdown e;
    e.profile = profile.name;
    e.idle_j = profile.idle_w * in.ttft_s;
    e.cpu_j = profile.core_active_w *
              (in.compute_busy_s * std::max(1, in.compute_threads) + in.decode_busy_s);
    // Union of the receive intervals.
    auto intervals = in.receive_intervals;
    std::sort(intervals.begin(), intervals.end());
    double covered = 0, end = -1e300;
    for (auto [a, b] : intervals) {
        if (b <= a) continue;
        if (a > end) {
            covered += b - a;
            end = b;
        } else if (b > end) {
            covered += b - end;
            end = b;
        }
    }
    e.receive_s = covered;
    const RadioModel& r = profile.radio;
    if (covered > 0) {
        const double mbps = static_cast<double>(in.bytes_received) * 8 / 1e6 / covered;
        e.radio_j = (r.alpha_down_w_per_mbps * mbps + r.beta_w) * covered + r.tail_w * r.tail_s +
                    r.promotion_w * r.promotion_s;
    }
    e.total_j = e.idle_j + e.cpu_j + e.radio_j;
    return e;
}

}  // namespace sparkv::runtime
