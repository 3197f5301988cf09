#include "cli/runtime_output.h"

#include <fmt/format.h>

#include <fstream>

#include "common/error.h"
#include "net/unit_client.h"

namespace sparkv::cli {

nlohmann::json ask_result_json(const runtime::AskResult& r) {
    nlohmann::json failures = nlohmann::json::array();
    for (const auto& f : r.failures)
        failures.push_back({{"t", f.unit.t},
                            {"l", f.unit.l},
                            {"kind", failure_kind_name(f.kind)},
                            {"reason", f.reason}});
    return {{"policy", r.policy},
            {"ttft_ms", r.ttft_ms},
            {"answer", r.answer},
            {"answer_tokens", r.answer_tokens},
            {"units_computed", r.units_computed},
            {"units_streamed", r.units_streamed},
            {"bytes_received", r.bytes_received},
            {"energy_j", r.energy.total_j},
            {"energy_note", r.energy.note},
            {"energy",
             {{"profile", r.energy.profile},
              {"idle_j", r.energy.idle_j},
              {"cpu_j", r.energy.cpu_j},
              {"radio_j", r.energy.radio_j},
              {"receive_s", r.energy.receive_s}}},
            {"planning_ms", r.planning_ms},
            {"controller_ms", r.controller_ms},
            {"controller_migrations", r.controller_migrations},
            {"failures", failures},
            {"level", r.level},
            {"manifest_ms", r.manifest_ms},
            {"load_ms", r.load_ms},
            {"question_ms", r.question_ms},
            {"predicted_ttft_ms", r.predicted_ttft_ms},
            {"lower_bound_ms", r.lower_bound_ms},
            {"planned_mbps", r.planned_mbps},
            {"bandwidth_source", r.bandwidth_source},
            {"trust_refusal",
             r.trust_refusal.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.trust_refusal)},
            {"cpu_availability", r.availability},
            {"pass_throughs", r.pass_throughs},
            {"decode_tok_s", r.decode_tok_s},
            {"context_tokens", r.context_tokens},
            {"question_tokens", r.question_tokens},
            {"chunks", r.n_chunks},
            {"layers", r.n_layers}};
}

void print_ask_breakdown(const runtime::AskResult& r, std::FILE* out) {
    std::fprintf(out, "policy %s, level %s: TTFT %.0f ms\n", r.policy.c_str(), r.level.c_str(),
                 r.ttft_ms);
    if (!r.trust_refusal.empty())
        std::fprintf(out, "  the context's KV was refused (%s): everything computed locally\n",
                     r.trust_refusal.c_str());
    std::fprintf(out, "  manifest + token ids   %8.1f ms\n", r.manifest_ms);
    std::fprintf(out, "  planning               %8.1f ms (plan predicted TTFT %.0f ms%s)\n",
                 r.planning_ms, r.predicted_ttft_ms,
                 r.lower_bound_ms > 0
                     ? fmt::format(", lower bound {:.0f} ms", r.lower_bound_ms).c_str()
                     : "");
    std::fprintf(
        out, "  loading the context    %8.1f ms (%zu units computed, %zu streamed, %.2f MB)\n",
        r.load_ms, r.units_computed, r.units_streamed, static_cast<double>(r.bytes_received) / 1e6);
    std::fprintf(out, "  question prefilled at  %8.1f ms after planning (%lld tokens)\n",
                 r.question_ms, static_cast<long long>(r.question_tokens));
    std::fprintf(out,
                 "  controller             %8.1f ms, %d migrations; planned %.1f Mbit/s, CPU "
                 "availability %.2f\n",
                 r.controller_ms, r.controller_migrations, r.planned_mbps, r.availability);
    if (!r.failures.empty()) {
        std::fprintf(out, "  %zu units failed to stream and were computed instead:\n",
                     r.failures.size());
        for (size_t i = 0; i < r.failures.size() && i < 5; ++i)
            std::fprintf(out, "    %s\n", r.failures[i].reason.c_str());
    }
    std::fprintf(out, "  energy (modelled, %s): %.1f J = idle %.1f + CPU %.1f + radio %.1f\n",
                 r.energy.profile.c_str(), r.energy.total_j, r.energy.idle_j, r.energy.cpu_j,
                 r.energy.radio_j);
}

void write_timeline_svg(const runtime::AskResult& r, const std::string& path,
                        const std::vector<runtime::BandwidthSample>& capacity) {
    runtime::TimelinePicture pic;
    pic.title =
        fmt::format("SparKV timeline: policy {}, {} context tokens", r.policy, r.context_tokens);
    pic.ttft_s = r.ttft_ms / 1e3;
    pic.n_chunks = r.n_chunks;
    pic.n_layers = r.n_layers;
    pic.energy_note =
        fmt::format("energy {:.1f} J (modelled, {})", r.energy.total_j, r.energy.profile);
    pic.capacity = capacity;
    std::ofstream out(path);
    out << runtime::render_timeline_svg(*r.timeline, pic);
    if (!out) fail("cannot write the timeline picture {}", path);
}

}  // namespace sparkv::cli
