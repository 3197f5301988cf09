// The timeline as a picture: one row per activity (set-up, compute lane, link, decoder), units
// as boxes coloured by chunk and shaded by layer, failures and migrations marked, the TTFT as a
// line, and the bandwidth the stream lane saw (with the link's capacity, when known) underneath.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "runtime/timeline.h"

namespace sparkv::runtime {

namespace {

constexpr double kWidth = 1200, kLeft = 110, kRight = 30;
constexpr double kRowH = 34, kRowGap = 10, kTop = 62, kBandH = 150;
constexpr const char* kPalette[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
                                    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};

std::string escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '&':
                out += "&amp;";
                break;
            case '"':
                out += "&quot;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

// A tick step of 1, 2 or 5 x 10^k that gives about `target` ticks over `span`.
double tick_step(double span, int target) {
    const double raw = span / target;
    const double p = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (m * p >= raw) return m * p;
    return 10 * p;
}

}  // namespace

std::string render_timeline_svg(const Timeline& timeline, const TimelinePicture& pic) {
    const auto events = timeline.events();
    const auto bandwidth = timeline.bandwidth();
    double t_end = pic.ttft_s;
    for (const auto& e : events) t_end = std::max(t_end, e.end_s);
    t_end = std::max(t_end, 1e-3) * 1.02;
    const double plot_w = kWidth - kLeft - kRight;
    const auto x = [&](double t) { return kLeft + plot_w * t / t_end; };
    const char* rows[] = {"set-up", "compute", "link", "decode"};
    const double rows_bottom = kTop + 4 * (kRowH + kRowGap);
    const double band_top = rows_bottom + 40, band_bottom = band_top + kBandH;
    const double height = band_bottom + 70;
    const auto row_y = [&](int r) { return kTop + r * (kRowH + kRowGap); };

    std::string s = fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" "
        "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" "
        "fill=\"white\"/>\n",
        kWidth, height);
    s += fmt::format("<text x=\"{}\" y=\"24\" font-size=\"16\" font-weight=\"bold\">{}</text>\n",
                     kLeft, escape(pic.title));
    s += fmt::format(
        "<text x=\"{}\" y=\"44\" fill=\"#444\">TTFT {:.2f} s · {} chunks x {} layers · boxes: "
        "colour = chunk, darker = deeper layer · {}</text>\n",
        kLeft, pic.ttft_s, pic.n_chunks, pic.n_layers, escape(pic.energy_note));
    for (int r = 0; r < 4; ++r) {
        s += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", kLeft - 8,
                         row_y(r) + kRowH / 2 + 4, rows[r]);
        s += fmt::format(
            "<rect x=\"{}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{}\" fill=\"#f5f5f5\"/>\n",
            kLeft, row_y(r), plot_w, kRowH);
    }
    const auto unit_fill = [&](const TimelineEvent& e) {
        const char* base = kPalette[static_cast<size_t>(std::max(0, e.t)) % std::size(kPalette)];
        const double depth = pic.n_layers > 1 ? static_cast<double>(e.l) / (pic.n_layers - 1) : 0;
        return std::pair<std::string, double>(base, 0.35 + 0.65 * depth);
    };
    const auto box = [&](int row, double a, double b, const std::string& fill, double opacity,
                         const std::string& tip, const char* stroke = "none") {
        s += fmt::format(
            "<rect x=\"{:.2f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"{}\" fill=\"{}\" "
            "fill-opacity=\"{:.2f}\" stroke=\"{}\" stroke-width=\"0.5\"><title>{}</title></rect>\n",
            x(a), row_y(row), std::max(0.6, x(b) - x(a)), kRowH, fill, opacity, stroke,
            escape(tip));
    };
    for (const auto& e : events) {
        switch (e.kind) {
            case EventKind::phase:
                box(0, e.start_s, e.end_s, "#888", 0.8,
                    fmt::format("{} {:.3f}-{:.3f} s", e.note, e.start_s, e.end_s));
                break;
            case EventKind::compute: {
                const auto [fill, op] = unit_fill(e);
                box(1, e.start_s, e.end_s, fill, op,
                    fmt::format("compute ({}, {}) {:.3f}-{:.3f} s", e.t, e.l, e.start_s, e.end_s));
                break;
            }
            case EventKind::pass_through:
                box(1, e.start_s, e.end_s, "#999", 0.6,
                    fmt::format("recompute over streamed KV ({}, {})", e.t, e.l), "#333");
                break;
            case EventKind::query:
                box(1, e.start_s, e.end_s, "#222", 0.9,
                    e.note.empty() ? fmt::format("question layer {}", e.l) : e.note);
                break;
            case EventKind::stream: {
                const auto [fill, op] = unit_fill(e);
                box(2, e.start_s, e.arrive_s, fill, op,
                    fmt::format("stream ({}, {}) {} {} B, {:.3f}-{:.3f} s", e.t, e.l, e.level,
                                e.bytes, e.start_s, e.arrive_s));
                box(3, e.arrive_s, e.end_s, fill, op, fmt::format("decode ({}, {})", e.t, e.l));
                break;
            }
            case EventKind::failure:
                s += fmt::format(
                    "<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#d00\" font-weight=\"bold\" "
                    "text-anchor=\"middle\">✕<title>{}</title></text>\n",
                    x(e.start_s), row_y(2) - 2, escape(e.note));
                break;
            case EventKind::migration: {
                const bool to_stream = e.note.find("-> stream") != std::string::npos;
                s += fmt::format(
                    "<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#7a00cc\" text-anchor=\"middle\">{}"
                    "<title>({}, {}) {}</title></text>\n",
                    x(e.start_s), row_y(to_stream ? 2 : 1) - 2, to_stream ? "▼" : "▲", e.t, e.l,
                    escape(e.note));
                break;
            }
        }
    }
    // TTFT marker.
    s += fmt::format(
        "<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1}\" y2=\"{2:.1f}\" stroke=\"#d00\" "
        "stroke-dasharray=\"4 3\"/>\n<text x=\"{0:.1f}\" y=\"{3:.1f}\" fill=\"#d00\" "
        "text-anchor=\"end\">first token {4:.2f} s </text>\n",
        x(pic.ttft_s), kTop - 6, band_bottom, kTop - 8, pic.ttft_s);

    // Bandwidth panel.
    // Scale to the link's capacity and the bulk of the samples: a tiny unit whose bytes came in
    // one burst can show an absurd rate, drawn clipped at the top instead of flattening the rest.
    std::vector<double> rates;
    for (const auto& b : bandwidth) rates.push_back(b.bytes_per_s * 8 / 1e6);
    std::sort(rates.begin(), rates.end());
    double peak = rates.empty() ? 1 : rates[rates.size() * 9 / 10];
    for (const auto& b : pic.capacity) peak = std::max(peak, b.bytes_per_s * 8 / 1e6);
    peak = std::max(peak, 1.0) * 1.15;
    const auto y_bw = [&](double mbps) { return band_bottom - kBandH * mbps / peak; };
    s += fmt::format(
        "<rect x=\"{}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{}\" fill=\"none\" "
        "stroke=\"#ccc\"/>\n",
        kLeft, band_top, plot_w, kBandH);
    s += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">Mbit/s</text>\n", kLeft - 8,
                     band_top + 12);
    const double ystep = tick_step(peak, 4);
    for (double v = 0; v <= peak; v += ystep)
        s += fmt::format(
            "<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\" fill=\"#666\">{:g}</text>\n",
            kLeft - 8, y_bw(v) + 4, v);
    if (!pic.capacity.empty()) {
        std::string path;
        for (const auto& b : pic.capacity) {
            if (b.t_s > t_end) break;
            path += fmt::format("{}{:.1f},{:.1f} ", path.empty() ? "M" : "L", x(b.t_s),
                                y_bw(b.bytes_per_s * 8 / 1e6));
        }
        s += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"#bbb\" stroke-width=\"1.5\"/>\n",
                         path);
    }
    for (const auto& b : bandwidth) {
        const double mbps = b.bytes_per_s * 8 / 1e6;
        s += fmt::format(
            "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.2\" fill=\"{}\"><title>{:.1f} Mbit/s</title>"
            "</circle>\n",
            x(b.t_s), y_bw(std::min(mbps, peak)), mbps > peak ? "#d00" : "#4e79a7", mbps);
    }
    // Time axis.
    const double step = tick_step(t_end, 10);
    for (double t = 0; t <= t_end; t += step)
        s += fmt::format(
            "<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1:.1f}\" y2=\"{2:.1f}\" stroke=\"#999\"/>"
            "<text x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\" fill=\"#444\">{4:g}</text>\n",
            x(t), band_bottom, band_bottom + 5, band_bottom + 18, t);
    s += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">seconds since the request "
        "(dots: throughput of each streamed unit{})</text>\n",
        kLeft + plot_w / 2, band_bottom + 38,
        pic.capacity.empty() ? "" : "; grey line: the link's capacity");
    s += "</svg>\n";
    return s;
}

}  // namespace sparkv::runtime
