// Small SVG charts made by the project itself (no plotting dependency): grouped bar charts and
// line/scatter charts with labelled axes and a legend. Enough for benchmark reports that a
// person would rather look at than read.
#pragma once

#include <string>
#include <vector>

namespace sparkv::svg {

struct Series {
    std::string name;
    std::vector<double> values;  // bar charts: one per group; line charts: y per x
    std::vector<double> x;       // line charts only
    std::string color;           // empty: from the palette
};

struct ChartOptions {
    std::string title;
    std::string subtitle;
    std::string x_label;
    std::string y_label;
    double width = 960;
    double height = 420;
    bool log_y = false;
    bool log_x = false;
    bool show_values = false;  // bars: print the value above each bar
    bool lines = true;         // line charts: connect points (false: scatter)
};

// Groups along x (e.g. link conditions), one bar per series in each group.
std::string bar_chart(const std::vector<std::string>& groups, const std::vector<Series>& series,
                      const ChartOptions& options);

std::string line_chart(const std::vector<Series>& series, const ChartOptions& options);

// Several charts stacked vertically in one SVG document.
std::string stack(const std::vector<std::string>& charts);

const std::vector<std::string>& palette();

}  // namespace sparkv::svg
