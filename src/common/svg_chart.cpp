#include "common/svg_chart.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <regex>

namespace sparkv::svg {

namespace {

constexpr double kLeft = 80, kRight = 170, kTop = 58, kBottom = 64;

std::string escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '<')
            out += "&lt;";
        else if (c == '>')
            out += "&gt;";
        else if (c == '&')
            out += "&amp;";
        else
            out += c;
    }
    return out;
}

double nice_step(double span, int target) {
    const double raw = span / std::max(1, target);
    const double p = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (m * p >= raw) return m * p;
    return 10 * p;
}

std::string number(double v) {
    if (v != 0 && (std::abs(v) >= 1e5 || std::abs(v) < 1e-3)) return fmt::format("{:.1e}", v);
    return fmt::format("{:g}", std::round(v * 1000) / 1000);
}

struct Axis {
    double lo, hi;
    bool log;
    double pixel_lo, pixel_hi;
    double map(double v) const {
        const double a = log ? std::log10(std::max(v, 1e-12)) : v;
        const double l = log ? std::log10(lo) : lo, h = log ? std::log10(hi) : hi;
        return pixel_lo + (pixel_hi - pixel_lo) * (a - l) / (h - l);
    }
    std::vector<double> ticks() const {
        std::vector<double> out;
        if (log) {
            for (double d = std::pow(10.0, std::floor(std::log10(lo))); d <= hi * 1.0001; d *= 10)
                for (double m : {1.0, 2.0, 5.0})
                    if (m * d >= lo * 0.9999 && m * d <= hi * 1.0001) out.push_back(m * d);
        } else {
            const double step = nice_step(hi - lo, 5);
            for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-6; v += step)
                out.push_back(v);
        }
        return out;
    }
};

Axis value_axis(std::vector<double> values, bool log, double p_lo, double p_hi, bool from_zero) {
    double lo = std::numeric_limits<double>::max(), hi = std::numeric_limits<double>::lowest();
    for (double v : values) {
        if (!std::isfinite(v) || (log && v <= 0)) continue;
        lo = std::min(lo, v);
        hi = std::max(hi, v);
    }
    if (lo > hi) lo = 0, hi = 1;
    if (log) {
        lo = std::pow(10.0, std::floor(std::log10(lo)));
        hi = std::pow(10.0, std::ceil(std::log10(hi * 1.05)));
    } else {
        if (from_zero) lo = std::min(lo, 0.0);
        const double pad = (hi - lo) * 0.08 + (hi == lo ? 1 : 0);
        hi += pad;
        if (!from_zero) lo -= pad;
    }
    return {lo, hi, log, p_lo, p_hi};
}

std::string frame(const ChartOptions& o, const Axis& y, double plot_w) {
    std::string s = fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" "
        "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" "
        "fill=\"white\"/>\n<text x=\"{}\" y=\"22\" font-size=\"15\" "
        "font-weight=\"bold\">{}</text>\n"
        "<text x=\"{}\" y=\"40\" fill=\"#555\">{}</text>\n",
        o.width, o.height, kLeft, escape(o.title), kLeft, escape(o.subtitle));
    for (double t : y.ticks())
        s += fmt::format(
            "<line x1=\"{}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#e5e5e5\"/>"
            "<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\" fill=\"#444\">{}</text>\n",
            kLeft, kLeft + plot_w, y.map(t), y.map(t), kLeft - 6, y.map(t) + 4, number(t));
    s += fmt::format(
        "<text transform=\"translate(18,{:.1f}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
        (y.pixel_lo + y.pixel_hi) / 2, escape(o.y_label));
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n",
                     kLeft + plot_w / 2, o.height - 12, escape(o.x_label));
    return s;
}

std::string legend(const std::vector<Series>& series, double x0) {
    std::string s;
    for (size_t i = 0; i < series.size(); ++i) {
        const std::string color =
            series[i].color.empty() ? palette()[i % palette().size()] : series[i].color;
        s += fmt::format(
            "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"12\" height=\"12\" fill=\"{}\"/>"
            "<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n",
            x0, kTop + 18.0 * static_cast<double>(i), color, x0 + 18,
            kTop + 10 + 18.0 * static_cast<double>(i), escape(series[i].name));
    }
    return s;
}

}  // namespace

const std::vector<std::string>& palette() {
    static const std::vector<std::string> colors = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759",
                                                    "#b07aa1", "#76b7b2", "#edc948", "#9c755f"};
    return colors;
}

std::string bar_chart(const std::vector<std::string>& groups, const std::vector<Series>& series,
                      const ChartOptions& o) {
    const double plot_w = o.width - kLeft - kRight, bottom = o.height - kBottom;
    std::vector<double> all;
    for (const auto& s : series) all.insert(all.end(), s.values.begin(), s.values.end());
    const Axis y = value_axis(all, o.log_y, bottom, kTop, true);
    std::string s = frame(o, y, plot_w);
    const double group_w = plot_w / static_cast<double>(std::max<size_t>(1, groups.size()));
    const double bar_w = group_w * 0.8 / static_cast<double>(std::max<size_t>(1, series.size()));
    const double base = y.map(o.log_y ? y.lo : std::max(0.0, y.lo));
    for (size_t g = 0; g < groups.size(); ++g) {
        const double gx = kLeft + group_w * static_cast<double>(g);
        // Labels wider than their group are slanted so that neighbours do not overlap.
        if (static_cast<double>(groups[g].size()) * 6.5 > group_w)
            s += fmt::format(
                "<text transform=\"translate({:.1f},{:.1f}) rotate(-25)\" text-anchor=\"end\" "
                "font-size=\"10\" fill=\"#333\">{}</text>\n",
                gx + group_w / 2 + 4, bottom + 14, escape(groups[g]));
        else
            s += fmt::format(
                "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#333\">{}</text>\n",
                gx + group_w / 2, bottom + 16, escape(groups[g]));
        for (size_t k = 0; k < series.size(); ++k) {
            if (g >= series[k].values.size() || !std::isfinite(series[k].values[g])) continue;
            const double v = series[k].values[g];
            const double top = y.map(v);
            const std::string color =
                series[k].color.empty() ? palette()[k % palette().size()] : series[k].color;
            const double x = gx + group_w * 0.1 + bar_w * static_cast<double>(k);
            s += fmt::format(
                "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\">"
                "<title>{} / {}: {}</title></rect>\n",
                x, std::min(top, base), bar_w * 0.92, std::abs(base - top), color,
                escape(groups[g]), escape(series[k].name), number(v));
            if (o.show_values)
                s += fmt::format(
                    "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"9\" "
                    "fill=\"#333\">{}</text>\n",
                    x + bar_w * 0.46, std::min(top, base) - 3, number(v));
        }
    }
    s += legend(series, kLeft + plot_w + 16);
    s += "</svg>\n";
    return s;
}

std::string line_chart(const std::vector<Series>& series, const ChartOptions& o) {
    const double plot_w = o.width - kLeft - kRight, bottom = o.height - kBottom;
    std::vector<double> ys, xs;
    for (const auto& s : series) {
        ys.insert(ys.end(), s.values.begin(), s.values.end());
        xs.insert(xs.end(), s.x.begin(), s.x.end());
    }
    const Axis y = value_axis(ys, o.log_y, bottom, kTop, false);
    Axis x = value_axis(xs, o.log_x, kLeft, kLeft + plot_w, false);
    std::string s = frame(o, y, plot_w);
    for (double t : x.ticks())
        s += fmt::format(
            "<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1:.1f}\" y2=\"{2:.1f}\" stroke=\"#999\"/>"
            "<text x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\" fill=\"#444\">{4}</text>\n",
            x.map(t), bottom, bottom + 5, bottom + 18, number(t));
    for (size_t k = 0; k < series.size(); ++k) {
        const auto& ser = series[k];
        const std::string color = ser.color.empty() ? palette()[k % palette().size()] : ser.color;
        std::string path;
        for (size_t i = 0; i < ser.values.size() && i < ser.x.size(); ++i) {
            if (!std::isfinite(ser.values[i])) continue;
            const double px = x.map(ser.x[i]), py = y.map(ser.values[i]);
            path += fmt::format("{}{:.1f},{:.1f} ", path.empty() ? "M" : "L", px, py);
            s += fmt::format(
                "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"><title>{}: ({}, "
                "{})</title></circle>\n",
                px, py, color, escape(ser.name), number(ser.x[i]), number(ser.values[i]));
        }
        if (o.lines && !path.empty())
            s += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\"/>\n",
                             path, color);
    }
    s += legend(series, kLeft + plot_w + 16);
    s += "</svg>\n";
    return s;
}

std::string stack(const std::vector<std::string>& charts) {
    // Each chart is a complete <svg>; nest them at increasing offsets.
    double y = 0, width = 0;
    std::string body;
    static const std::regex size(R"re(width="([0-9.]+)" height="([0-9.]+)")re");
    for (const auto& c : charts) {
        std::smatch m;
        double w = 960, h = 420;
        if (std::regex_search(c, m, size)) w = std::stod(m[1]), h = std::stod(m[2]);
        const auto open = c.find("<svg ");
        body += fmt::format("<svg x=\"0\" y=\"{:.0f}\" ", y) + c.substr(open + 5);
        y += h;
        width = std::max(width, w);
    }
    return fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\">\n{}</svg>\n",
        width, y, body);
}

}  // namespace sparkv::svg
