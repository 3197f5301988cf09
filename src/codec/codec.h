// The KV codec: encodes one KV unit (chunk t, layer l) = the K and V of all KV heads for one token
// chunk at one layer, and decodes it fast, straight into the caller's fp16 buffers.
//
// Levels, from lossless to smallest:
//   fp16  bit-exact; the high byte of every half (sign, exponent, top mantissa bits) is Huffman
//         coded, the low byte (noise-like mantissa) is stored raw.
//   int8, q6h, q5h (the published level), q4h, q3h  uniform min-max quantisation followed by
//         Huffman coding of the symbols. Keys are quantised per channel (over the unit's tokens,
//         because keys have outlier channels), values per token and head (per row of head_dim).
// Bit widths are set per layer: by the level's layer-wise profile when the model's layer count
// is given, or explicitly (EncodeOptions::layer_bits). Measurements: src/codec/README.md.
//
// Usage:
//   auto bytes = codec::encode_unit(key, shape, k, v, codec::EncodeOptions(Level::q5h, n_layers));
//   codec::Decoder decoder;            // owns reusable scratch; one per thread
//   decoder.decode(bytes, key, shape, k_out, v_out);
// Both K and V are fp16 bit patterns laid out [n_kv_heads][n_tokens][head_dim]; a head stride
// lets the engine decode straight into its cache ([kv_head][capacity][head_dim]).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sparkv::codec {

// c4, c5, c6, c8 are calibrated levels (codec v2): their per-layer K/V widths come from a model's
// codec profile (codec/profile.h), chosen by dynamic programming under a byte budget of 1/4.17,
// 1/5, 1/6 and 1/8 of fp16 on the calibration text; they also keep the context's first tokens
// (attention sinks) exact and, with a version-3 profile, each layer's salient tokens (those the
// context's last queries attend to most, EncodeOptions::salient_rows) at 8 bits. They cannot be
// encoded without a profile.
enum class Level : uint8_t {
    fp16 = 0,
    int8 = 1,
    q6h = 2,
    q5h = 3,
    q4h = 4,
    q3h = 5,
    c4 = 6,
    c5 = 7,
    c6 = 8,
    c8 = 9,
};
constexpr Level kLastLevel = Level::c8;

// Bits per K and V element. For fp16 both are 16; quantised levels use 2..8.
struct BitWidths {
    uint8_t k = 5;
    uint8_t v = 5;
    bool operator==(const BitWidths&) const = default;
};

// A lossy level has a uniform bit width (its name: q5h = 5 bits for K and V) and a layer-wise
// profile used when the model's layer count is known: layers in the sensitive depth band keep
// more bits than the others, and values get one bit less than keys (cutting a V bit costs far
// less fidelity than cutting a K bit). See src/codec/README.md for the measurements.
struct LevelInfo {
    Level level;
    std::string_view name;
    bool lossless;
    BitWidths uniform_bits;    // without model information
    BitWidths sensitive_bits;  // layer profile: layers in the sensitive band
    BitWidths other_bits;      // layer profile: all other layers
    double target_ratio = 0;   // calibrated levels: size budget as a fraction of fp16 (1/x)
    bool calibrated() const { return target_ratio > 0; }
};

const LevelInfo& level_info(Level level);
// The fixed ladder (fp16 .. q3h), ordered from lossless to smallest: every one encodes without
// a profile, so callers that try "every level" iterate these.
std::span<const LevelInfo> all_levels();
std::span<const LevelInfo> calibrated_levels();  // c4 .. c8: need a codec profile
std::string_view level_name(Level level);
Level level_from_name(std::string_view name);  // throws Error listing the valid names
constexpr Level kDefaultLossyLevel = Level::q5h;

struct UnitKey {
    uint64_t fingerprint = 0;  // model fingerprint: a unit never decodes into another model
    uint32_t chunk = 0;        // t
    uint32_t layer = 0;        // l
    bool operator==(const UnitKey&) const = default;
};

struct UnitShape {
    uint32_t n_tokens = 0;  // tokens in this chunk (the last chunk may be shorter)
    uint16_t n_kv_heads = 0;
    uint16_t head_dim = 0;
    uint64_t elements() const { return uint64_t{n_tokens} * n_kv_heads * head_dim; }  // per K or V
    bool operator==(const UnitShape&) const = default;
};

// Shape limits the format accepts (keeps every size computation far from overflow).
constexpr uint32_t kMaxTokens = 1u << 20;
constexpr uint16_t kMaxKvHeads = 256;
constexpr uint16_t kMaxHeadDim = 1024;
constexpr uint64_t kMaxElements = uint64_t{1} << 28;

// One K or V tensor of a unit: head h's [n_tokens][head_dim] rows start at data + h * head_stride.
struct ConstKvView {
    const uint16_t* data = nullptr;
    uint64_t head_stride = 0;  // in elements; n_tokens * head_dim when contiguous
};
struct KvView {
    uint16_t* data = nullptr;
    uint64_t head_stride = 0;
    operator ConstKvView() const { return {data, head_stride}; }
};
inline ConstKvView contiguous(const uint16_t* data, const UnitShape& s) {
    return {data, uint64_t{s.n_tokens} * s.head_dim};
}
inline KvView contiguous(uint16_t* data, const UnitShape& s) {
    return {data, uint64_t{s.n_tokens} * s.head_dim};
}

// Which kernels the encoder and decoder use; `automatic` picks AVX2 + F16C when the CPU has them.
// Both produce bit-identical results (tests check it); `scalar` exists for tests and old CPUs.
enum class Kernels { automatic, scalar };

// Relative depth (layer / (n_layers - 1)) of the band of layers whose KV is most sensitive to
// quantisation, measured on SmolLM2-135M (src/codec/README.md).
constexpr double kSensitiveBandBegin = 0.4;
constexpr double kSensitiveBandEnd = 0.9;

// The bit widths of `level` at `layer` of an n_layers model (its layer-wise profile).
BitWidths profile_bits(Level level, uint32_t layer, uint32_t n_layers);

struct CodecProfile;

// Bit widths per layer, in order of precedence: layer_bits[l] when given; else, for a calibrated
// level, the profile's table (required); else the level's layer-wise profile when n_layers is set
// (the recommended default); else its uniform width. fp16 ignores all of them.
struct EncodeOptions {
    EncodeOptions() = default;
    EncodeOptions(Level l) : level(l) {}  // NOLINT: implicit, so a Level can stand for options
    EncodeOptions(Level l, uint32_t layers) : level(l), n_layers(layers) {}

    Level level = kDefaultLossyLevel;
    uint32_t n_layers = 0;  // the model's layer count; 0 = unknown (uniform widths)
    std::vector<BitWidths> layer_bits;
    Kernels kernels = Kernels::automatic;
    // A calibrated level's widths and sink tokens; its hash goes into every unit it encodes
    // (format version 2). Not owned; must outlive the encode calls.
    const CodecProfile* profile = nullptr;
    // Per-head widths of a layer (one entry per KV head), e.g. for calibration probes; overrides
    // the profile's. Empty or shorter than the layer: the layer's width for every head.
    std::vector<std::vector<BitWidths>> head_bits;
    // Calibrated levels: the unit's salient tokens (indices within the unit, ascending), stored at
    // salient_bits for K and V instead of the layer's widths (format version 3). Chosen by the
    // caller, e.g. by attention at ingest (cloud/saliency.h); indices among the sink tokens are
    // skipped (those are exact already). Not owned.
    std::span<const uint32_t> salient_rows;
    uint8_t salient_bits = 8;
    BitWidths bits_for(uint32_t layer) const;
    // The widths of every KV head at `layer`: head_bits, else the profile's per-head table when it
    // has one, else bits_for(layer) for each. The unit header records their maximum.
    std::vector<BitWidths> head_bits_for(uint32_t layer, uint32_t n_kv_heads) const;
    std::vector<BitWidths> table(uint32_t n) const;  // bits_for(0 .. n-1)
};

// Applies a per-layer table such as "0-3:6/6,4-29:5/4" (layers: K bits/V bits; "7:4" sets both)
// to `base` (one entry per layer) and returns it. Throws Error on malformed input.
std::vector<BitWidths> parse_layer_bits(std::string_view text, std::vector<BitWidths> base);
// The inverse: "0-11:4/3,12-26:5/4,27-29:4/3".
std::string format_layer_bits(const std::vector<BitWidths>& table);
// One layer's per-head widths as text ("3,4,3/2,3,2": K widths, then V widths, one per KV head)
// and back; parse throws Error on malformed text or widths outside 2..8.
std::string format_head_bits(const std::vector<BitWidths>& heads);
std::vector<BitWidths> parse_head_bits(std::string_view text);
// The widest K and the widest V width of a layer's heads: what its unit header records.
BitWidths widest(std::span<const BitWidths> heads);

// The validated unit header.
enum class Grouping : uint8_t { none = 0, per_channel = 1, per_token_head = 2 };
struct UnitHeader {
    uint16_t format_version = 0;
    UnitKey key;
    UnitShape shape;
    Level level = Level::fp16;
    BitWidths bits;
    Grouping k_grouping = Grouping::none;
    Grouping v_grouping = Grouping::none;
    uint64_t payload_size = 0;
    uint64_t payload_checksum = 0;  // xxh64 of the payload
    // Format version 2 (calibrated levels) only; zero in version 1.
    uint64_t profile_hash = 0;  // hash of the codec profile the unit was encoded with
    uint16_t sink_tokens = 0;   // the unit's first tokens, stored exact (fp16) before the rest
    // Format version 3 only: rows (tokens) stored at a wider width than the rest.
    uint8_t salient_bits = 0;
    uint32_t salient_rows = 0;
    size_t header_size = 64;  // kHeaderSize (version 1) or kHeaderSizeV2 (versions 2 and 3)
};
constexpr size_t kHeaderSize = 64;    // format version 1 (fp16 .. q3h)
constexpr size_t kHeaderSizeV2 = 80;  // format versions 2 and 3 (calibrated levels)

// Encodes one unit. Throws Error on an invalid shape or on non-finite input for a lossy level.
std::vector<uint8_t> encode_unit(const UnitKey& key, const UnitShape& shape, ConstKvView k,
                                 ConstKvView v, const EncodeOptions& options = {});

// Parses and validates the header alone (magic, version, header checksum, field ranges, and
// that the byte count matches the payload size). Does not check the payload checksum.
UnitHeader read_header(std::span<const uint8_t> unit);

class Decoder {
  public:
    explicit Decoder(Kernels kernels = Kernels::automatic);
    ~Decoder();
    Decoder(Decoder&&) noexcept;
    Decoder& operator=(Decoder&&) noexcept;

    // Decodes `unit` into k_out and v_out after checking it against what the caller expects:
    // key, shape, level (if given), header and payload checksums, and the payload's structure.
    // Throws Error("unit (t, l): ...") on any mismatch, truncation or corruption; on error the
    // outputs may be partly written. Allocates only when a unit is larger than any before.
    // expected_profile: the hash of the profile the caller's context was encoded with; a
    // version-2 unit with another profile hash is rejected.
    UnitHeader decode(std::span<const uint8_t> unit, const UnitKey& expected_key,
                      const UnitShape& expected_shape, KvView k_out, KvView v_out,
                      std::optional<Level> expected_level = std::nullopt,
                      std::optional<uint64_t> expected_profile = std::nullopt);

    bool uses_simd() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Encode then decode: what a fidelity harness needs to see the KV the device would get.
// Returns the encoded size in bytes.
size_t roundtrip_unit(const UnitKey& key, const UnitShape& shape, ConstKvView k, ConstKvView v,
                      const EncodeOptions& options, Decoder& decoder, KvView k_out, KvView v_out);

}  // namespace sparkv::codec
