// Level names and defaults, and per-layer bit-width tables.
#include <charconv>
#include <string>

#include "codec/codec.h"
#include "common/error.h"

namespace sparkv::codec {

namespace {

// Default bit widths: K and V get the same width. The published level is q5h.
constexpr LevelInfo kLevels[] = {
    {Level::fp16, "fp16", true, {16, 16}}, {Level::int8, "int8", false, {8, 8}},
    {Level::q6h, "q6h", false, {6, 6}},    {Level::q5h, "q5h", false, {5, 5}},
    {Level::q4h, "q4h", false, {4, 4}},    {Level::q3h, "q3h", false, {3, 3}},
};

uint32_t parse_number(std::string_view text, std::string_view whole) {
    uint32_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) {
        fail("layer bit table '{}': '{}' is not a number", whole, text);
    }
    return value;
}

uint8_t parse_bits(std::string_view text, std::string_view whole) {
    const uint32_t bits = parse_number(text, whole);
    if (bits < 2 || bits > 8) fail("layer bit table '{}': {} bits is outside 2..8", whole, bits);
    return static_cast<uint8_t>(bits);
}

}  // namespace

std::span<const LevelInfo> all_levels() { return kLevels; }

const LevelInfo& level_info(Level level) {
    for (const LevelInfo& info : kLevels)
        if (info.level == level) return info;
    fail("unknown codec level {}", static_cast<int>(level));
}

std::string_view level_name(Level level) { return level_info(level).name; }

Level level_from_name(std::string_view name) {
    std::string names;
    for (const LevelInfo& info : kLevels) {
        if (info.name == name) return info.level;
        names += names.empty() ? "" : ", ";
        names += info.name;
    }
    fail("unknown codec level '{}' (levels: {})", name, names);
}

BitWidths EncodeOptions::bits_for(uint32_t layer) const {
    const LevelInfo& info = level_info(level);
    if (info.lossless || layer >= layer_bits.size()) return info.default_bits;
    return layer_bits[layer];
}

std::vector<BitWidths> parse_layer_bits(std::string_view text, uint32_t n_layers,
                                        BitWidths fallback) {
    std::vector<BitWidths> table(n_layers, fallback);
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
            fail("layer bit table '{}': layers {}-{} are outside 0-{}", whole, first, last,
                 n_layers - 1);
        }
        const size_t slash = bits.find('/');
        BitWidths widths;
        widths.k = parse_bits(bits.substr(0, slash), whole);
        widths.v = slash == std::string_view::npos ? widths.k : parse_bits(bits.substr(slash + 1), whole);
        for (uint32_t l = first; l <= last; ++l) table[l] = widths;
    }
    return table;
}

}  // namespace sparkv::codec
