// Unit encoding and decoding: header, checks, and the two sections.
#include "codec/codec.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "codec/profile.h"
#include "codec/section_codec.h"
#include "codec/unit_format.h"
#include "common/error.h"

namespace sparkv::codec {

namespace {

// Keys have outlier channels, so a key channel gets its own range over the unit's tokens; values
// get one range per token and head (a row of head_dim). See the README of src/codec for the
// measurements behind both choices.
constexpr Grouping kKeyGrouping = Grouping::per_channel;
constexpr Grouping kValueGrouping = Grouping::per_token_head;

const QuantKernels& pick_kernels(Kernels choice) {
    if (choice == Kernels::automatic) {
        if (const QuantKernels* fast = avx2_quant_kernels()) return *fast;
    }
    return scalar_quant_kernels();
}

void check_shape(const UnitShape& s, Where where) {
    if (s.n_kv_heads < 1 || s.n_kv_heads > kMaxKvHeads || s.head_dim < 1 ||
        s.head_dim > kMaxHeadDim || s.n_tokens > kMaxTokens || s.elements() > kMaxElements) {
        fail(
            "{}: shape {} tokens x {} KV heads x {} is outside the codec's limits "
            "(<= {} tokens, 1-{} heads, head_dim 1-{}, <= {} elements)",
            where.str(), s.n_tokens, s.n_kv_heads, s.head_dim, kMaxTokens, kMaxKvHeads, kMaxHeadDim,
            kMaxElements);
    }
}

// Checks a caller's view. An empty unit (no tokens) touches no element, so its view may be null;
// it is then replaced by one at a dummy address, which keeps all pointer arithmetic defined.
template <typename View, typename Element>
void check_view(View& view, const UnitShape& s, const char* what, Where where, Element* dummy) {
    const uint64_t per_head = uint64_t{s.n_tokens} * s.head_dim;
    if (per_head == 0) {
        view = {dummy, 0};
        return;
    }
    if (view.data == nullptr) fail("{}: no {} buffer given", where.str(), what);
    if (s.n_kv_heads > 1 && view.head_stride < per_head) {
        fail("{}: {} head stride {} is shorter than a head ({} elements)", where.str(), what,
             view.head_stride, per_head);
    }
}

}  // namespace

namespace {

// The first `sink` tokens of a view, and the view of the rest.
UnitShape rows_shape(const UnitShape& s, uint32_t n) {
    return {n, s.n_kv_heads, s.head_dim};
}
template <typename View>
View skip_rows(View v, const UnitShape& s, uint32_t n) {
    return {v.data + size_t{n} * s.head_dim, v.head_stride};
}

// The salient rows past the sinks, checked: ascending, inside the unit.
std::vector<uint32_t> salient_past_sinks(std::span<const uint32_t> rows, const UnitShape& s,
                                         uint32_t sink, Where where) {
    std::vector<uint32_t> out;
    for (size_t i = 0; i < rows.size(); ++i) {
        if (rows[i] >= s.n_tokens || (i > 0 && rows[i] <= rows[i - 1]))
            fail("{}: salient rows must be ascending token indices below {}", where.str(),
                 s.n_tokens);
        if (rows[i] >= sink) out.push_back(rows[i]);
    }
    return out;
}

// Copies, per head, either the rows listed in `rows` (take = true) or the rows in [first,
// n_tokens) not listed (take = false) into a contiguous [head][row][dim] buffer.
void gather_rows(ConstKvView x, const UnitShape& s, std::span<const uint32_t> rows, bool take,
                 uint32_t first, std::vector<uint16_t>& out) {
    out.clear();
    for (size_t h = 0; h < s.n_kv_heads; ++h) {
        size_t next = 0;
        for (uint32_t r = first; r < s.n_tokens; ++r) {
            const bool listed = next < rows.size() && rows[next] == r;
            if (listed) ++next;
            if (listed != take) continue;
            const uint16_t* row = x.data + h * x.head_stride + size_t{r} * s.head_dim;
            out.insert(out.end(), row, row + s.head_dim);
        }
    }
}

// The inverse: rows [first, first + n_rest) of `out` hold the unlisted rows packed; spread them
// to their places and put the listed rows (`listed`, [head][row][dim]) between them. Walks
// backwards, so a packed row is read before anything is written over it.
void scatter_rows(KvView out, const UnitShape& s, std::span<const uint32_t> rows,
                  const uint16_t* listed, uint32_t first) {
    const size_t dim = s.head_dim;
    const size_t n_rest = s.n_tokens - first - rows.size();
    for (size_t h = 0; h < s.n_kv_heads; ++h) {
        uint16_t* base = out.data + h * out.head_stride;
        size_t packed = n_rest, j = rows.size();
        for (size_t r = s.n_tokens; r-- > first;) {
            uint16_t* dst = base + r * dim;
            if (j > 0 && rows[j - 1] == r) {
                --j;
                std::memcpy(dst, listed + (h * rows.size() + j) * dim, dim * sizeof(uint16_t));
            } else {
                --packed;
                const uint16_t* src = base + (first + packed) * dim;
                if (src != dst) std::memmove(dst, src, dim * sizeof(uint16_t));
            }
        }
    }
}

}  // namespace

std::vector<uint8_t> encode_unit(const UnitKey& key, const UnitShape& shape, ConstKvView k,
                                 ConstKvView v, const EncodeOptions& options) {
    const Where where{&key};
    check_shape(shape, where);
    const uint16_t dummy = 0;
    check_view(k, shape, "K", where, &dummy);
    check_view(v, shape, "V", where, &dummy);
    const LevelInfo& info = level_info(options.level);

    UnitHeader header;
    header.key = key;
    header.shape = shape;
    header.level = options.level;
    header.header_size = header_size_for(options.level);
    // Per KV head; the header keeps the widest.
    const std::vector<BitWidths> heads = info.lossless
                                             ? std::vector<BitWidths>{}
                                             : options.head_bits_for(key.layer, shape.n_kv_heads);
    header.bits = info.lossless ? options.bits_for(key.layer) : widest(heads);
    if (info.calibrated()) {
        const CodecProfile& profile = require_profile(options.profile, options.level);
        if (profile.model_fingerprint != key.fingerprint)
            fail("{}: codec profile {:016x} is for model {:016x}, not {:016x}", where.str(),
                 profile.hash(), profile.model_fingerprint, key.fingerprint);
        header.profile_hash = profile.hash();
        // Attention sinks: the context's first tokens draw attention from every later token, and
        // their keys are outliers that would stretch every channel's range.
        if (key.chunk == 0)
            header.sink_tokens = static_cast<uint16_t>(
                std::min<uint32_t>({profile.sink_tokens, shape.n_tokens, 0xffffu}));
    }
    std::vector<uint8_t> out(header.header_size);
    SectionScratch scratch;
    if (info.lossless) {
        encode_fp16_section(k, shape, scratch, out);
        encode_fp16_section(v, shape, scratch, out);
    } else {
        for (const BitWidths& hb : heads)
            for (uint8_t b : {hb.k, hb.v})
                if (b < 2 || b > 8) fail("{}: {} bits per element is outside 2..8", where.str(), b);
        std::vector<uint8_t> k_bits, v_bits;
        for (const BitWidths& hb : heads) k_bits.push_back(hb.k), v_bits.push_back(hb.v);
        const size_t per_head = size_t{shape.n_tokens} * shape.head_dim;
        for (size_t h = 0; h < shape.n_kv_heads; ++h) {
            if (!all_finite(k.data + h * k.head_stride, per_head) ||
                !all_finite(v.data + h * v.head_stride, per_head)) {
                fail("{}: KV head {} holds inf or NaN; only the fp16 level encodes those",
                     where.str(), h);
            }
        }
        header.k_grouping = kKeyGrouping;
        header.v_grouping = kValueGrouping;
        const uint32_t sink = header.sink_tokens;
        if (sink > 0) {
            encode_fp16_section(k, rows_shape(shape, sink), scratch, out);
            encode_fp16_section(v, rows_shape(shape, sink), scratch, out);
        }
        const QuantKernels& kernels = pick_kernels(options.kernels);
        const std::vector<uint32_t> salient =
            salient_past_sinks(options.salient_rows, shape, sink, where);
        if (salient.empty()) {
            const UnitShape rest = rows_shape(shape, shape.n_tokens - sink);
            encode_quantized_section(skip_rows(k, shape, sink), rest, kKeyGrouping, k_bits, kernels,
                                     scratch, out);
            encode_quantized_section(skip_rows(v, shape, sink), rest, kValueGrouping, v_bits,
                                     kernels, scratch, out);
        } else {
            if (!info.calibrated())
                fail("{}: salient rows need a calibrated level, not {}", where.str(), info.name);
            if (options.salient_bits < 2 || options.salient_bits > 8)
                fail("{}: salient rows at {} bits; 2..8 are possible", where.str(),
                     options.salient_bits);
            header.salient_bits = options.salient_bits;
            header.salient_rows = static_cast<uint32_t>(salient.size());
            const size_t at = out.size();
            out.resize(at + salient.size() * sizeof(uint32_t));
            std::memcpy(out.data() + at, salient.data(), salient.size() * sizeof(uint32_t));
            // Salient rows, then the rest, each packed per head.
            const std::vector<uint8_t> wide(shape.n_kv_heads, options.salient_bits);
            const UnitShape picked = rows_shape(shape, header.salient_rows);
            const UnitShape rest = rows_shape(shape, shape.n_tokens - sink - header.salient_rows);
            std::vector<uint16_t> rows;
            const auto encode_rows = [&](ConstKvView x, Grouping grouping,
                                         std::span<const uint8_t> bits, bool salient_part,
                                         const UnitShape& part) {
                gather_rows(x, shape, salient, salient_part, sink, rows);
                encode_quantized_section(contiguous(rows.data(), part), part, grouping, bits,
                                         kernels, scratch, out);
            };
            encode_rows(k, kKeyGrouping, wide, true, picked);
            encode_rows(v, kValueGrouping, wide, true, picked);
            encode_rows(k, kKeyGrouping, k_bits, false, rest);
            encode_rows(v, kValueGrouping, v_bits, false, rest);
        }
    }
    const std::span<const uint8_t> payload(out.data() + header.header_size,
                                           out.size() - header.header_size);
    header.payload_size = payload.size();
    header.payload_checksum = payload_checksum(payload);
    write_header(header, out.data());
    return out;
}

UnitHeader read_header(std::span<const uint8_t> unit) {
    return parse_header(unit, Where{});
}

struct Decoder::Impl {
    const QuantKernels* kernels;
    SectionScratch scratch;
};

Decoder::Decoder(Kernels kernels) : impl_(std::make_unique<Impl>()) {
    impl_->kernels = &pick_kernels(kernels);
}
Decoder::~Decoder() = default;
Decoder::Decoder(Decoder&&) noexcept = default;
Decoder& Decoder::operator=(Decoder&&) noexcept = default;

bool Decoder::uses_simd() const {
    return impl_->kernels != &scalar_quant_kernels();
}

UnitHeader Decoder::decode(std::span<const uint8_t> unit, const UnitKey& expected_key,
                           const UnitShape& expected_shape, KvView k_out, KvView v_out,
                           std::optional<Level> expected_level,
                           std::optional<uint64_t> expected_profile) {
    const Where where{&expected_key};
    const UnitHeader h = parse_header(unit, where);
    if (h.key.fingerprint != expected_key.fingerprint) {
        fail("{}: encoded for model fingerprint {:016x}, expected {:016x}", where.str(),
             h.key.fingerprint, expected_key.fingerprint);
    }
    if (h.key.chunk != expected_key.chunk || h.key.layer != expected_key.layer) {
        fail("{}: the data is unit ({}, {})", where.str(), h.key.chunk, h.key.layer);
    }
    const UnitShape& s = h.shape;
    if (s != expected_shape) {
        fail("{}: shape {} tokens x {} KV heads x {} does not match the expected {} x {} x {}",
             where.str(), s.n_tokens, s.n_kv_heads, s.head_dim, expected_shape.n_tokens,
             expected_shape.n_kv_heads, expected_shape.head_dim);
    }
    if (expected_level && h.level != *expected_level) {
        fail("{}: level {} where {} was expected", where.str(), level_name(h.level),
             level_name(*expected_level));
    }
    if (expected_profile && h.format_version >= kFormatVersionV2 &&
        h.profile_hash != *expected_profile) {
        fail(
            "{}: encoded with codec profile {:016x}, but this context uses profile {:016x} "
            "(re-ingest the context with the current profile)",
            where.str(), h.profile_hash, *expected_profile);
    }
    uint16_t dummy = 0;
    check_view(k_out, s, "K", where, &dummy);
    check_view(v_out, s, "V", where, &dummy);
    const std::span<const uint8_t> payload = unit.subspan(h.header_size);
    if (payload_checksum(payload) != h.payload_checksum) fail("{}: checksum mismatch", where.str());

    const uint8_t* data = payload.data();
    const size_t size = payload.size();
    size_t pos = 0;
    SectionScratch& scratch = impl_->scratch;
    if (level_info(h.level).lossless) {
        decode_fp16_section(data, size, pos, s, scratch, k_out, {&expected_key, "K"});
        decode_fp16_section(data, size, pos, s, scratch, v_out, {&expected_key, "V"});
    } else {
        const uint32_t sink = h.sink_tokens;
        if (sink > 0) {
            decode_fp16_section(data, size, pos, rows_shape(s, sink), scratch, k_out,
                                {&expected_key, "sink K"});
            decode_fp16_section(data, size, pos, rows_shape(s, sink), scratch, v_out,
                                {&expected_key, "sink V"});
        }
        const uint32_t n_salient = h.salient_rows;
        if (n_salient > 0) {
            const size_t list_bytes = size_t{n_salient} * sizeof(uint32_t);
            if (size - pos < list_bytes)
                fail("{}: corrupt payload (salient row list is cut short)", where.str());
            scratch.rows.resize(n_salient);
            std::memcpy(scratch.rows.data(), data + pos, list_bytes);
            pos += list_bytes;
            for (uint32_t i = 0; i < n_salient; ++i) {
                const uint32_t r = scratch.rows[i];
                if (r < sink || r >= s.n_tokens || (i > 0 && r <= scratch.rows[i - 1]))
                    fail(
                        "{}: corrupt payload (salient row list is not ascending within rows "
                        "{}..{})",
                        where.str(), sink, s.n_tokens - 1);
            }
            const UnitShape picked = rows_shape(s, n_salient);
            scratch.salient_k.resize(picked.elements());
            scratch.salient_v.resize(picked.elements());
            decode_quantized_section(
                data, size, pos, picked, h.k_grouping, h.salient_bits, *impl_->kernels, scratch,
                contiguous(scratch.salient_k.data(), picked), {&expected_key, "salient K"});
            decode_quantized_section(
                data, size, pos, picked, h.v_grouping, h.salient_bits, *impl_->kernels, scratch,
                contiguous(scratch.salient_v.data(), picked), {&expected_key, "salient V"});
        }
        const UnitShape rest = rows_shape(s, s.n_tokens - sink - n_salient);
        decode_quantized_section(data, size, pos, rest, h.k_grouping, h.bits.k, *impl_->kernels,
                                 scratch, skip_rows(k_out, s, sink), {&expected_key, "K"});
        decode_quantized_section(data, size, pos, rest, h.v_grouping, h.bits.v, *impl_->kernels,
                                 scratch, skip_rows(v_out, s, sink), {&expected_key, "V"});
        if (n_salient > 0) {
            scatter_rows(k_out, s, scratch.rows, scratch.salient_k.data(), sink);
            scatter_rows(v_out, s, scratch.rows, scratch.salient_v.data(), sink);
        }
    }
    if (pos != size) fail("{}: corrupt payload ({} bytes left over)", where.str(), size - pos);
    return h;
}

size_t roundtrip_unit(const UnitKey& key, const UnitShape& shape, ConstKvView k, ConstKvView v,
                      const EncodeOptions& options, Decoder& decoder, KvView k_out, KvView v_out) {
    const std::vector<uint8_t> bytes = encode_unit(key, shape, k, v, options);
    decoder.decode(
        bytes, key, shape, k_out, v_out, options.level,
        options.profile ? std::optional<uint64_t>(options.profile->hash()) : std::nullopt);
    return bytes.size();
}

}  // namespace sparkv::codec
