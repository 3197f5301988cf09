// Level names and defaults, and per-layer bit-width tables.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <string>

#include "codec/codec.h"
#include "codec/profile.h"
#include "common/error.h"

namespace sparkv::codec {

namespace {

// name, lossless, uniform, sensitive band, other layers. The published level is q5h.
constexpr LevelInfo kLevels[] = {
    {Level::fp16, "fp16", true, {16, 16}, {16, 16}, {16, 16}},
    {Level::int8, "int8", false, {8, 8}, {8, 8}, {8, 8}},
    {Level::q6h, "q6h", false, {6, 6}, {6, 5}, {5, 4}},
    {Level::q5h, "q5h", false, {5, 5}, {5, 4}, {4, 3}},
    {Level::q4h, "q4h", false, {4, 4}, {4, 3}, {3, 3}},
    {Level::q3h, "q3h", false, {3, 3}, {4, 2}, {3, 2}},
    // Calibrated: widths come from the codec profile (the ones here are never used).
    {Level::c4, "c4", false, {5, 5}, {5, 5}, {5, 5}, 4.17},
    {Level::c5, "c5", false, {4, 4}, {4, 4}, {4, 4}, 5.0},
    {Level::c6, "c6", false, {4, 4}, {4, 4}, {4, 4}, 6.0},
    {Level::c8, "c8", false, {3, 3}, {3, 3}, {3, 3}, 8.0},
};

// `what` names the textual form in errors: "layer bit table" or "per-head widths".
uint32_t parse_number(std::string_view text, std::string_view whole,
                      std::string_view what = "layer bit table") {
    uint32_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) {
        fail("{} '{}': '{}' is not a number", what, whole, text);
    }
    return value;
}

uint8_t parse_bits(std::string_view text, std::string_view whole,
                   std::string_view what = "layer bit table") {
    const uint32_t bits = parse_number(text, whole, what);
    if (bits < 2 || bits > 8) fail("{} '{}': {} bits is outside 2..8", what, whole, bits);
    return static_cast<uint8_t>(bits);
}

}  // namespace

// The fixed ladder comes first in kLevels; the calibrated levels follow.
constexpr size_t kFixedLevels = 6;

std::span<const LevelInfo> all_levels() {
    return std::span<const LevelInfo>(kLevels).first(kFixedLevels);
}

std::span<const LevelInfo> calibrated_levels() {
    return std::span<const LevelInfo>(kLevels).subspan(kFixedLevels);
}

const LevelInfo& level_info(Level level) {
    for (const LevelInfo& info : kLevels)
        if (info.level == level) return info;
    fail("unknown codec level {}", static_cast<int>(level));
}

std::string_view level_name(Level level) {
    return level_info(level).name;
}

Level level_from_name(std::string_view name) {
    std::string names;
    for (const LevelInfo& info : kLevels) {
        if (info.name == name) return info.level;
        names += names.empty() ? "" : ", ";
        names += info.name;
    }
    fail("unknown codec level '{}' (levels: {})", name, names);
}

BitWidths profile_bits(Level level, uint32_t layer, uint32_t n_layers) {
    const LevelInfo& info = level_info(level);
    const double depth = n_layers > 1 ? static_cast<double>(layer) / (n_layers - 1) : 0.0;
    const bool sensitive = depth >= kSensitiveBandBegin && depth < kSensitiveBandEnd;
    return sensitive ? info.sensitive_bits : info.other_bits;
}

BitWidths EncodeOptions::bits_for(uint32_t layer) const {
    const LevelInfo& info = level_info(level);
    if (info.lossless) return info.uniform_bits;
    if (layer < layer_bits.size()) return layer_bits[layer];
    if (info.calibrated()) return require_profile(profile, level).bits_for(level, layer);
    if (n_layers > 0) return profile_bits(level, layer, n_layers);
    return info.uniform_bits;
}

std::vector<BitWidths> EncodeOptions::head_bits_for(uint32_t layer, uint32_t n_kv_heads) const {
    const LevelInfo& info = level_info(level);
    const std::vector<BitWidths>* heads = nullptr;
    if (layer < head_bits.size() && !head_bits[layer].empty()) {
        heads = &head_bits[layer];
    } else if (info.calibrated() && layer >= layer_bits.size()) {
        heads = require_profile(profile, level).head_bits_for(level, layer);
    }
    if (!heads) return std::vector<BitWidths>(n_kv_heads, bits_for(layer));
    if (heads->size() != n_kv_heads)
        fail("per-head widths of layer {} cover {} KV heads, the unit has {}", layer, heads->size(),
             n_kv_heads);
    return *heads;
}

BitWidths widest(std::span<const BitWidths> heads) {
    BitWidths w{0, 0};
    for (const BitWidths& b : heads) w = {std::max(w.k, b.k), std::max(w.v, b.v)};
    return w;
}

std::vector<BitWidths> EncodeOptions::table(uint32_t n) const {
    std::vector<BitWidths> bits(n);
    for (uint32_t l = 0; l < n; ++l) bits[l] = bits_for(l);
    return bits;
}

std::string format_layer_bits(const std::vector<BitWidths>& table) {
    std::string text;
    for (size_t first = 0; first < table.size();) {
        size_t last = first;
        while (last + 1 < table.size() && table[last + 1] == table[first]) ++last;
        if (!text.empty()) text += ',';
        text += first == last ? std::to_string(first)
                              : std::to_string(first) + "-" + std::to_string(last);
        text += ':' + std::to_string(table[first].k) + '/' + std::to_string(table[first].v);
        first = last + 1;
    }
    return text;
}

std::vector<BitWidths> parse_layer_bits(std::string_view text, std::vector<BitWidths> table) {
    const auto n_layers = static_cast<uint32_t>(table.size());
    const std::string_view whole = text;
    bool more = !text.empty();
    while (more) {
        const size_t comma = text.find(',');
        const std::string_view entry = text.substr(0, comma);
        more = comma != std::string_view::npos;
        text = more ? text.substr(comma + 1) : std::string_view{};
        const size_t colon = entry.find(':');
        if (colon == std::string_view::npos) {
            fail("layer bit table '{}': entry '{}' needs the form LAYERS:K/V, e.g. 0-3:6/5", whole,
                 entry);
        }
        const std::string_view layers = entry.substr(0, colon), bits = entry.substr(colon + 1);
        const size_t dash = layers.find('-');
        const uint32_t first = parse_number(layers.substr(0, dash), whole);
        const uint32_t last =
            dash == std::string_view::npos ? first : parse_number(layers.substr(dash + 1), whole);
        if (first > last || last >= n_layers) {
            fail("layer bit table '{}': layers {}-{} are outside the model's {} layers", whole,
                 first, last, n_layers);
        }
        const size_t slash = bits.find('/');
        BitWidths widths;
        widths.k = parse_bits(bits.substr(0, slash), whole);
        widths.v =
            slash == std::string_view::npos ? widths.k : parse_bits(bits.substr(slash + 1), whole);
        for (uint32_t l = first; l <= last; ++l) table[l] = widths;
    }
    return table;
}

std::string format_head_bits(const std::vector<BitWidths>& heads) {
    std::string k, v;
    for (const BitWidths& b : heads) {
        k += fmt::format("{}{}", k.empty() ? "" : ",", b.k);
        v += fmt::format("{}{}", v.empty() ? "" : ",", b.v);
    }
    return fmt::format("{}/{}", k, v);
}

std::vector<BitWidths> parse_head_bits(std::string_view text) {
    constexpr std::string_view kWhat = "per-head widths";
    const size_t slash = text.find('/');
    if (slash == std::string_view::npos) fail("{} '{}': expected K widths/V widths", kWhat, text);
    auto widths = [&](std::string_view list) {
        std::vector<uint8_t> out;
        for (bool more = !list.empty(); more;) {
            const size_t comma = list.find(',');
            more = comma != std::string_view::npos;
            out.push_back(parse_bits(list.substr(0, comma), text, kWhat));
            list = more ? list.substr(comma + 1) : std::string_view{};
        }
        return out;
    };
    const std::vector<uint8_t> k = widths(text.substr(0, slash)),
                               v = widths(text.substr(slash + 1));
    if (k.empty() || k.size() != v.size())
        fail("{} '{}': K and V need one width per head each", kWhat, text);
    std::vector<BitWidths> heads;
    for (size_t h = 0; h < k.size(); ++h) heads.push_back({k[h], v[h]});
    return heads;
}

}  // namespace sparkv::codec
