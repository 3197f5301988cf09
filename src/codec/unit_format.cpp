#include "codec/unit_format.h"

#include <xxhash.h>

#include <cstring>

#include "common/error.h"

namespace sparkv::codec {

namespace {

constexpr uint8_t kMagic[4] = {'S', 'K', 'V', 'U'};
constexpr size_t kHeaderChecksumOffset = 56;
// Version 2 appends the profile hash (56), sink tokens (64), 6 reserved bytes (66) and moves the
// header checksum to 72. Version 3 has the same layout and fills bytes 66 (salient bits) and
// 68-71 (salient row count).
constexpr size_t kHeaderChecksumOffsetV2 = 72;

size_t checksum_offset(uint16_t version) {
    return version == 1 ? kHeaderChecksumOffset : kHeaderChecksumOffsetV2;
}

template <typename T>
void put(uint8_t* out, size_t offset, T value) {
    std::memcpy(out + offset, &value, sizeof value);
}

template <typename T>
T get(const uint8_t* in, size_t offset) {
    T value;
    std::memcpy(&value, in + offset, sizeof value);
    return value;
}

uint64_t header_checksum(const uint8_t* header, uint16_t version) {
    return XXH64(header, checksum_offset(version), 0);
}

bool grouping_valid(uint8_t g, bool lossless) {
    if (lossless) return g == static_cast<uint8_t>(Grouping::none);
    return g == static_cast<uint8_t>(Grouping::per_channel) ||
           g == static_cast<uint8_t>(Grouping::per_token_head);
}

}  // namespace

uint16_t format_version_for(Level level) {
    return level_info(level).calibrated() ? kFormatVersionV2 : kFormatVersion;
}

size_t header_size_for(Level level) {
    return level_info(level).calibrated() ? kHeaderSizeV2 : kHeaderSize;
}

void write_header(const UnitHeader& h, uint8_t* out) {
    const uint16_t version = h.salient_rows > 0 ? kFormatVersionV3 : format_version_for(h.level);
    const size_t size = header_size_for(h.level);
    std::memset(out, 0, size);
    std::memcpy(out, kMagic, sizeof kMagic);
    put<uint16_t>(out, 4, version);
    put<uint16_t>(out, 6, static_cast<uint16_t>(size));
    put<uint64_t>(out, 8, h.key.fingerprint);
    put<uint32_t>(out, 16, h.key.chunk);
    put<uint32_t>(out, 20, h.key.layer);
    put<uint32_t>(out, 24, h.shape.n_tokens);
    put<uint16_t>(out, 28, h.shape.n_kv_heads);
    put<uint16_t>(out, 30, h.shape.head_dim);
    out[32] = static_cast<uint8_t>(h.level);
    out[33] = h.bits.k;
    out[34] = h.bits.v;
    out[35] = static_cast<uint8_t>(h.k_grouping);
    out[36] = static_cast<uint8_t>(h.v_grouping);
    put<uint64_t>(out, 40, h.payload_size);
    put<uint64_t>(out, 48, h.payload_checksum);
    if (version >= 2) {
        put<uint64_t>(out, 56, h.profile_hash);
        put<uint16_t>(out, 64, h.sink_tokens);
        if (version >= 3) {
            out[66] = h.salient_bits;
            put<uint32_t>(out, 68, h.salient_rows);
        }
    }
    put<uint64_t>(out, checksum_offset(version), header_checksum(out, version));
}

std::string Where::str() const {
    std::string s = key ? fmt::format("unit ({}, {})", key->chunk, key->layer) : "KV unit";
    if (section) s += fmt::format(": {} section", section);
    return s;
}

UnitHeader parse_header(std::span<const uint8_t> unit, Where at) {
    const auto where = [&] { return at.str(); };
    if (unit.size() < kHeaderSize) {
        fail("{}: truncated: {} bytes, the header alone needs {}", where(), unit.size(),
             kHeaderSize);
    }
    const uint8_t* in = unit.data();
    if (std::memcmp(in, kMagic, sizeof kMagic) != 0)
        fail("{}: not an encoded KV unit (bad magic)", where());
    const auto version = get<uint16_t>(in, 4);
    if (version < kFormatVersion || version > kFormatVersionV3) {
        fail("{}: format version {} is not supported (this build reads versions {} to {})", where(),
             version, kFormatVersion, kFormatVersionV3);
    }
    const size_t header_size = version == kFormatVersion ? kHeaderSize : kHeaderSizeV2;
    if (unit.size() < header_size) {
        fail("{}: truncated: {} bytes, the header alone needs {}", where(), unit.size(),
             header_size);
    }
    if (get<uint16_t>(in, 6) != header_size) fail("{}: corrupt header (header size)", where());
    if (get<uint64_t>(in, checksum_offset(version)) != header_checksum(in, version)) {
        fail("{}: header checksum mismatch", where());
    }

    UnitHeader h;
    h.format_version = version;
    h.header_size = header_size;
    h.key = {get<uint64_t>(in, 8), get<uint32_t>(in, 16), get<uint32_t>(in, 20)};
    h.shape = {get<uint32_t>(in, 24), get<uint16_t>(in, 28), get<uint16_t>(in, 30)};
    if (in[32] > static_cast<uint8_t>(kLastLevel)) fail("{}: unknown level {}", where(), in[32]);
    h.level = static_cast<Level>(in[32]);
    // Version 3 is version 2 with salient rows: also a calibrated level.
    const uint16_t level_version = format_version_for(h.level);
    if (level_version != version && !(version == kFormatVersionV3 && level_version == 2))
        fail("{}: corrupt header: level {} in format version {}", where(), level_name(h.level),
             version);
    if (version >= 2) {
        h.profile_hash = get<uint64_t>(in, 56);
        h.sink_tokens = get<uint16_t>(in, 64);
        const size_t reserved_from = version >= 3 ? 67 : 66;
        for (size_t i = reserved_from; i < (version >= 3 ? 68u : 72u); ++i)
            if (in[i]) fail("{}: corrupt header: reserved bytes are not zero", where());
        if (version >= 3) {
            h.salient_bits = in[66];
            h.salient_rows = get<uint32_t>(in, 68);
            if (h.salient_bits < 2 || h.salient_bits > 8 || h.salient_rows == 0)
                fail("{}: corrupt header: {} salient rows at {} bits", where(), h.salient_rows,
                     h.salient_bits);
        }
    }
    h.bits = {in[33], in[34]};
    const bool lossless = level_info(h.level).lossless;
    const auto bits_ok = [&](uint8_t b) { return lossless ? b == 16 : (b >= 2 && b <= 8); };
    if (!bits_ok(h.bits.k) || !bits_ok(h.bits.v)) {
        fail("{}: corrupt header: bit widths K {} / V {} are invalid for level {}", where(),
             h.bits.k, h.bits.v, level_name(h.level));
    }
    if (!grouping_valid(in[35], lossless) || !grouping_valid(in[36], lossless)) {
        fail("{}: corrupt header: invalid quantisation grouping", where());
    }
    h.k_grouping = static_cast<Grouping>(in[35]);
    h.v_grouping = static_cast<Grouping>(in[36]);
    if (in[37] || in[38] || in[39])
        fail("{}: corrupt header: reserved bytes are not zero", where());
    const UnitShape& s = h.shape;
    if (s.n_kv_heads < 1 || s.n_kv_heads > kMaxKvHeads || s.head_dim < 1 ||
        s.head_dim > kMaxHeadDim || s.n_tokens > kMaxTokens || s.elements() > kMaxElements) {
        fail("{}: corrupt header: shape {} tokens x {} KV heads x {} is out of range", where(),
             s.n_tokens, s.n_kv_heads, s.head_dim);
    }
    if (h.sink_tokens > s.n_tokens)
        fail("{}: corrupt header: {} sink tokens in a {}-token unit", where(), h.sink_tokens,
             s.n_tokens);
    if (h.salient_rows > s.n_tokens - h.sink_tokens)
        fail("{}: corrupt header: {} salient rows and {} sink tokens in a {}-token unit", where(),
             h.salient_rows, h.sink_tokens, s.n_tokens);
    h.payload_size = get<uint64_t>(in, 40);
    h.payload_checksum = get<uint64_t>(in, 48);
    const uint64_t have = unit.size() - header_size;
    if (have < h.payload_size) {
        fail("{}: truncated: payload has {} of {} bytes", where(), have, h.payload_size);
    }
    if (have > h.payload_size) {
        fail("{}: {} unexpected bytes after the payload", where(), have - h.payload_size);
    }
    return h;
}

uint64_t payload_checksum(std::span<const uint8_t> payload) {
    return XXH64(payload.data(), payload.size(), 0);
}

void reseal_unit(std::span<uint8_t> unit) {
    if (unit.size() < kHeaderSize) return;
    uint8_t* h = unit.data();
    const uint16_t stated = get<uint16_t>(h, 4);
    const uint16_t version = stated == kFormatVersionV2 || stated == kFormatVersionV3 ? stated : 1;
    const size_t size = version == 1 ? kHeaderSize : kHeaderSizeV2;
    if (unit.size() < size) return;
    put<uint64_t>(h, 48, payload_checksum(unit.subspan(size)));
    put<uint64_t>(h, checksum_offset(version), header_checksum(h, version));
}

}  // namespace sparkv::codec
