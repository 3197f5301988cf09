#include "codec/section_codec.h"

#include <cstring>

#include "common/error.h"
#include "common/fp16.h"

namespace sparkv::codec {

namespace {

template <typename T>
T* grow(std::vector<T>& v, size_t n) {
    if (v.size() < n) v.resize(n);
    return v.data();
}

size_t group_count(const UnitShape& s, Grouping g) {
    const size_t per_head = g == Grouping::per_channel ? s.head_dim : s.n_tokens;
    return per_head * s.n_kv_heads;
}

bool is_finite_half(uint16_t h) { return (h & 0x7c00u) != 0x7c00u; }

}  // namespace

void encode_quantized_section(ConstKvView x, const UnitShape& shape, Grouping grouping, int bits,
                              const QuantKernels& kernels, SectionScratch& scratch,
                              std::vector<uint8_t>& out) {
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
    const size_t params_at = out.size();
    out.resize(params_at + 4 * groups);
    for (size_t g = 0; g < groups; ++g) {
        const GroupParams p = group_params(mins[g], maxs[g], qmax);
        std::memcpy(out.data() + params_at + 2 * g, &p.min_bits, 2);
        std::memcpy(out.data() + params_at + 2 * (groups + g), &p.step_bits, 2);
        mins[g] = fp16_to_fp32(p.min_bits);
        steps[g] = fp16_to_fp32(p.step_bits);
        inv_steps[g] = steps[g] > 0.0f ? 1.0f / steps[g] : 0.0f;
    }

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
    const size_t n = per_head * shape.n_kv_heads;
    uint8_t* hi = grow(scratch.symbols, 2 * n);
    uint8_t* lo = hi + n;
    for (size_t h = 0; h < shape.n_kv_heads; ++h)
        split_bytes(x.data + h * x.head_stride, per_head, hi + h * per_head, lo + h * per_head);
    uint32_t counts[huffman::kMaxSymbols];
    huffman::histogram(hi, n, counts);
    const huffman::Code code = huffman::build_code(counts, huffman::kMaxSymbols);
    huffman::write_code(code, huffman::kMaxSymbols, out);
    huffman::encode_streams(hi, n, huffman::build_encode_table(code), out);
    out.insert(out.end(), lo, lo + n);
}

void decode_quantized_section(const uint8_t* payload, size_t size, size_t& pos,
                              const UnitShape& shape, Grouping grouping, int bits,
                              const QuantKernels& kernels, SectionScratch& scratch, KvView out,
                              Where where) {
    const int64_t rows = shape.n_tokens, cols = shape.head_dim;
    const bool per_col = grouping == Grouping::per_channel;
    const size_t per_head = per_col ? cols : rows;
    const size_t groups = group_count(shape, grouping);
    if (size - pos < 4 * groups) fail("{}: truncated quantisation parameters", where.str());
    float* mins = grow(scratch.mins, groups);
    float* steps = grow(scratch.steps, groups);
    for (size_t g = 0; g < groups; ++g) {
        uint16_t min_bits, step_bits;
        std::memcpy(&min_bits, payload + pos + 2 * g, 2);
        std::memcpy(&step_bits, payload + pos + 2 * (groups + g), 2);
        if (!is_finite_half(min_bits) || !is_finite_half(step_bits) || (step_bits & 0x8000u)) {
            fail("{}: corrupt quantisation parameters (group {})", where.str(), g);
        }
        mins[g] = fp16_to_fp32(min_bits);
        steps[g] = fp16_to_fp32(step_bits);
    }
    pos += 4 * groups;

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
    const size_t n = per_head * shape.n_kv_heads;
    huffman::Code code;
    if (!huffman::read_code(payload, size, pos, huffman::kMaxSymbols, code)) {
        fail("{}: corrupt Huffman code table", where.str());
    }
    huffman::build_decode_table(code, scratch.table);
    uint8_t* hi = grow(scratch.symbols, n);
    if (!huffman::decode_streams(payload, size, pos, scratch.table, hi, n)) {
        fail("{}: corrupt entropy-coded data", where.str());
    }
    if (size - pos < n) fail("{}: truncated low bytes", where.str());
    const uint8_t* lo = payload + pos;
    for (size_t h = 0; h < shape.n_kv_heads; ++h)
        merge_bytes(hi + h * per_head, lo + h * per_head, per_head, out.data + h * out.head_stride);
    pos += n;
}

}  // namespace sparkv::codec
