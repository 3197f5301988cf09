#include "codec/section_codec.h"

#include <algorithm>
#include <cstring>

#include "common/error.h"
#include "common/fp16.h"

namespace sparkv::codec {

namespace {

enum class HalvesMode : uint8_t { raw = 0, split_huffman = 1 };

template <typename T>
T* grow(std::vector<T>& v, size_t n) {
    if (v.size() < n) v.resize(n);
    return v.data();
}

size_t group_count(const UnitShape& s, Grouping g) {
    const size_t per_head = g == Grouping::per_channel ? s.head_dim : s.n_tokens;
    return per_head * s.n_kv_heads;
}

bool is_finite_half(uint16_t h) {
    return (h & 0x7c00u) != 0x7c00u;
}

// A block of halves given as `segments` runs of `length` elements, run i at data + i * stride.
struct HalfRuns {
    size_t segments, length;
    uint64_t stride;
    size_t count() const { return segments * length; }
};

void encode_halves(const uint16_t* data, const HalfRuns& runs, SectionScratch& scratch,
                   std::vector<uint8_t>& out) {
    const size_t n = runs.count();
    uint8_t* hi = grow(scratch.symbols, 2 * n);
    uint8_t* lo = hi + n;
    for (size_t i = 0; i < runs.segments; ++i) {
        split_bytes(data + i * runs.stride, runs.length, hi + i * runs.length,
                    lo + i * runs.length);
    }
    uint32_t counts[huffman::kMaxSymbols];
    huffman::histogram(hi, n, counts);
    const huffman::Code code = huffman::build_code(counts, huffman::kMaxSymbols);
    const uint64_t coded = huffman::coded_bits(code, counts, huffman::kMaxSymbols) / 8 + 160;
    if (coded >= n) {  // incompressible high bytes (or tiny blocks): store raw
        out.push_back(static_cast<uint8_t>(HalvesMode::raw));
        const size_t at = out.size();
        out.resize(at + 2 * n);
        for (size_t i = 0; i < runs.segments && runs.length; ++i) {  // data may be null if empty
            std::memcpy(out.data() + at + 2 * i * runs.length, data + i * runs.stride,
                        2 * runs.length);
        }
        return;
    }
    out.push_back(static_cast<uint8_t>(HalvesMode::split_huffman));
    huffman::write_code(code, huffman::kMaxSymbols, out);
    huffman::encode_streams(hi, n, huffman::build_encode_table(code), out);
    out.insert(out.end(), lo, lo + n);
}

void decode_halves(const uint8_t* payload, size_t size, size_t& pos, uint16_t* data,
                   const HalfRuns& runs, SectionScratch& scratch, Where where, const char* what) {
    const size_t n = runs.count();
    if (pos >= size) fail("{}: truncated {}", where.str(), what);
    const uint8_t mode = payload[pos++];
    if (mode == static_cast<uint8_t>(HalvesMode::raw)) {
        if (size - pos < 2 * n) fail("{}: truncated {}", where.str(), what);
        for (size_t i = 0; i < runs.segments && runs.length; ++i) {  // data may be null if empty
            std::memcpy(data + i * runs.stride, payload + pos + 2 * i * runs.length,
                        2 * runs.length);
        }
        pos += 2 * n;
        return;
    }
    if (mode != static_cast<uint8_t>(HalvesMode::split_huffman)) {
        fail("{}: corrupt {} (unknown coding {})", where.str(), what, mode);
    }
    huffman::Code code;
    if (!huffman::read_code(payload, size, pos, huffman::kMaxSymbols, code)) {
        fail("{}: corrupt Huffman code table of the {}", where.str(), what);
    }
    huffman::build_decode_table(code, scratch.table);
    uint8_t* hi = grow(scratch.symbols, n);
    if (!huffman::decode_streams(payload, size, pos, scratch.table, hi, n)) {
        fail("{}: corrupt entropy-coded {}", where.str(), what);
    }
    if (size - pos < n) fail("{}: truncated {}", where.str(), what);
    const uint8_t* lo = payload + pos;
    for (size_t i = 0; i < runs.segments; ++i) {
        merge_bytes(hi + i * runs.length, lo + i * runs.length, runs.length,
                    data + i * runs.stride);
    }
    pos += n;
}

}  // namespace

void encode_quantized_section(ConstKvView x, const UnitShape& shape, Grouping grouping,
                              std::span<const uint8_t> head_bits, const QuantKernels& kernels,
                              SectionScratch& scratch, std::vector<uint8_t>& out) {
    if (head_bits.size() != shape.n_kv_heads)
        fail("codec: {} head widths for {} KV heads", head_bits.size(), shape.n_kv_heads);
    const int bits = *std::max_element(head_bits.begin(), head_bits.end());
    const int64_t rows = shape.n_tokens, cols = shape.head_dim;
    const bool per_col = grouping == Grouping::per_channel;
    const size_t per_head = per_col ? cols : rows;
    const size_t groups = group_count(shape, grouping);
    const int qmax = (1 << bits) - 1;
    float* mins = grow(scratch.mins, groups);
    float* maxs = grow(scratch.maxs, groups);
    float* steps = grow(scratch.steps, groups);
    float* inv_steps = grow(scratch.inv_steps, groups);
    for (size_t h = 0; h < shape.n_kv_heads; ++h) {
        const uint16_t* head = x.data + h * x.head_stride;
        (per_col ? kernels.minmax_per_col : kernels.minmax_per_row)(
            head, rows, cols, mins + h * per_head, maxs + h * per_head);
    }
    // Parameters as halves: all mins, then all steps.
    uint16_t* params = grow(scratch.params, 2 * groups);
    for (size_t g = 0; g < groups; ++g) {
        const int head_qmax = (1 << head_bits[g / per_head]) - 1;
        GroupParams p = group_params(mins[g], maxs[g], head_qmax);
        if (const int shift = (qmax - head_qmax) / 2; shift > 0) {  // centre a narrower head
            const float step = fp16_to_fp32(p.step_bits);
            const uint16_t moved = fp32_to_fp16(mins[g] - static_cast<float>(shift) * step + 0.0f);
            if (is_finite_half(moved)) p.min_bits = moved;
        }
        params[g] = p.min_bits;
        params[groups + g] = p.step_bits;
        mins[g] = fp16_to_fp32(p.min_bits);
        steps[g] = fp16_to_fp32(p.step_bits);
        inv_steps[g] = steps[g] > 0.0f ? 1.0f / steps[g] : 0.0f;
    }
    encode_halves(params, {1, 2 * groups, 0}, scratch, out);

    const size_t per_tensor = static_cast<size_t>(rows * cols);
    uint8_t* symbols = grow(scratch.symbols, per_tensor * shape.n_kv_heads);
    for (size_t h = 0; h < shape.n_kv_heads; ++h) {
        (per_col ? kernels.quantize_per_col : kernels.quantize_per_row)(
            x.data + h * x.head_stride, rows, cols, mins + h * per_head, inv_steps + h * per_head,
            qmax, symbols + h * per_tensor);
    }
    const size_t n = per_tensor * shape.n_kv_heads;
    uint32_t counts[huffman::kMaxSymbols];
    huffman::histogram(symbols, n, counts);
    const huffman::Code code = huffman::build_code(counts, qmax + 1);
    huffman::write_code(code, qmax + 1, out);
    huffman::encode_streams(symbols, n, huffman::build_encode_table(code), out);
}

void encode_fp16_section(ConstKvView x, const UnitShape& shape, SectionScratch& scratch,
                         std::vector<uint8_t>& out) {
    const size_t per_head = size_t{shape.n_tokens} * shape.head_dim;
    encode_halves(x.data, {shape.n_kv_heads, per_head, x.head_stride}, scratch, out);
}

void decode_quantized_section(const uint8_t* payload, size_t size, size_t& pos,
                              const UnitShape& shape, Grouping grouping, int bits,
                              const QuantKernels& kernels, SectionScratch& scratch, KvView out,
                              Where where) {
    const int64_t rows = shape.n_tokens, cols = shape.head_dim;
    const bool per_col = grouping == Grouping::per_channel;
    const size_t per_head = per_col ? cols : rows;
    const size_t groups = group_count(shape, grouping);
    uint16_t* params = grow(scratch.params, 2 * groups);
    decode_halves(payload, size, pos, params, {1, 2 * groups, 0}, scratch, where,
                  "quantisation parameters");
    float* mins = grow(scratch.mins, groups);
    float* steps = grow(scratch.steps, groups);
    for (size_t g = 0; g < groups; ++g) {
        const uint16_t min_bits = params[g], step_bits = params[groups + g];
        if (!is_finite_half(min_bits) || !is_finite_half(step_bits) || (step_bits & 0x8000u)) {
            fail("{}: corrupt quantisation parameters (group {})", where.str(), g);
        }
        mins[g] = fp16_to_fp32(min_bits);
        steps[g] = fp16_to_fp32(step_bits);
    }

    const int n_symbols = 1 << bits;
    huffman::Code code;
    if (!huffman::read_code(payload, size, pos, n_symbols, code)) {
        fail("{}: corrupt Huffman code table", where.str());
    }
    huffman::build_decode_table(code, scratch.table);
    const size_t per_tensor = static_cast<size_t>(rows * cols);
    const size_t n = per_tensor * shape.n_kv_heads;
    uint8_t* symbols = grow(scratch.symbols, n);
    if (!huffman::decode_streams(payload, size, pos, scratch.table, symbols, n)) {
        fail("{}: corrupt entropy-coded data", where.str());
    }
    for (size_t h = 0; h < shape.n_kv_heads; ++h) {
        (per_col ? kernels.dequantize_per_col : kernels.dequantize_per_row)(
            symbols + h * per_tensor, rows, cols, mins + h * per_head, steps + h * per_head,
            out.data + h * out.head_stride);
    }
}

void decode_fp16_section(const uint8_t* payload, size_t size, size_t& pos, const UnitShape& shape,
                         SectionScratch& scratch, KvView out, Where where) {
    const size_t per_head = size_t{shape.n_tokens} * shape.head_dim;
    decode_halves(payload, size, pos, out.data, {shape.n_kv_heads, per_head, out.head_stride},
                  scratch, where, "data");
}

}  // namespace sparkv::codec
