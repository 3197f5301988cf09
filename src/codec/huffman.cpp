#include "codec/huffman.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <numeric>

namespace sparkv::codec::huffman {

static_assert(std::endian::native == std::endian::little, "the bit streams assume little endian");

namespace {

uint64_t load64(const uint8_t* p) {
    uint64_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

void store16(uint8_t* p, uint16_t v) {
    std::memcpy(p, &v, sizeof v);
}
void store32(uint8_t* p, uint32_t v) {
    std::memcpy(p, &v, sizeof v);
}
uint32_t load32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

// Unconstrained Huffman lengths of the used symbols (two-queue construction over leaves sorted
// by count). Returns the longest length.
int huffman_lengths(const uint32_t* counts, int n_symbols, CodeLengths& lengths) {
    std::array<int, kMaxSymbols> order{};
    int m = 0;
    for (int s = 0; s < n_symbols; ++s)
        if (counts[s] > 0) order[m++] = s;
    std::sort(order.begin(), order.begin() + m,
              [&](int a, int b) {  // ties by symbol: deterministic
                  return counts[a] != counts[b] ? counts[a] < counts[b] : a < b;
              });

    // Nodes 0..m-1 are the leaves in ascending weight; m..2m-2 the internal nodes, created in
    // ascending weight too, so two queue heads always hold the two lightest candidates.
    std::array<uint64_t, 2 * kMaxSymbols> weight{};
    std::array<int, 2 * kMaxSymbols> parent{};
    for (int i = 0; i < m; ++i) weight[i] = counts[order[i]];
    int leaf = 0, inner = m, next = m;
    auto pop = [&]() {
        if (leaf < m && (inner >= next || weight[leaf] <= weight[inner])) return leaf++;
        return inner++;
    };
    for (int k = 0; k < m - 1; ++k) {
        const int a = pop(), b = pop();
        weight[next] = weight[a] + weight[b];
        parent[a] = parent[b] = next;
        ++next;
    }
    std::array<uint8_t, 2 * kMaxSymbols> depth{};
    int longest = 0;
    for (int i = 2 * m - 3; i >= 0; --i) {  // parents have higher indices than their children
        depth[i] = static_cast<uint8_t>(depth[parent[i]] + 1);
        if (i < m) longest = std::max<int>(longest, depth[i]);
    }
    lengths.fill(0);
    for (int i = 0; i < m; ++i) lengths[order[i]] = depth[i];
    return longest;
}

// Canonical codes (shorter first, then by symbol), returned bit-reversed for LSB-first streams.
std::array<uint16_t, kMaxSymbols> canonical_reversed_codes(const CodeLengths& lengths) {
    std::array<uint32_t, kMaxCodeLength + 2> count{}, next{};
    for (uint8_t len : lengths)
        if (len) ++count[len];
    for (int len = 2; len <= kMaxCodeLength; ++len)
        next[len] = (next[len - 1] + count[len - 1]) << 1;
    std::array<uint16_t, kMaxSymbols> codes{};
    for (int s = 0; s < kMaxSymbols; ++s) {
        const int len = lengths[s];
        if (!len) continue;
        const uint32_t code = next[len]++;
        uint32_t reversed = 0;
        for (int b = 0; b < len; ++b) reversed |= ((code >> b) & 1u) << (len - 1 - b);
        codes[s] = static_cast<uint16_t>(reversed);
    }
    return codes;
}

}  // namespace

Code build_code(const uint32_t* counts, int n_symbols) {
    Code code;
    int used = 0, last = 0;
    for (int s = 0; s < n_symbols; ++s) {
        if (counts[s] > 0) {
            ++used;
            last = s;
        }
    }
    if (used <= 1) {
        code.single = last;
        return code;
    }
    std::array<uint32_t, kMaxSymbols> scaled{};
    std::copy(counts, counts + n_symbols, scaled.begin());
    while (huffman_lengths(scaled.data(), n_symbols, code.lengths) > kMaxCodeLength) {
        for (int s = 0; s < n_symbols; ++s) scaled[s] = scaled[s] ? (scaled[s] + 1) / 2 : 0;
    }
    return code;
}

bool code_valid(const Code& code, int n_symbols) {
    if (n_symbols < 1 || n_symbols > kMaxSymbols) return false;
    if (code.single >= 0) {
        if (code.single >= n_symbols) return false;
        return std::all_of(code.lengths.begin(), code.lengths.end(), [](uint8_t l) { return !l; });
    }
    uint64_t kraft = 0;  // in units of 2^-kMaxCodeLength
    for (int s = 0; s < kMaxSymbols; ++s) {
        const int len = code.lengths[s];
        if (!len) continue;
        if (s >= n_symbols || len > kMaxCodeLength) return false;
        kraft += uint64_t{1} << (kMaxCodeLength - len);
    }
    return kraft == uint64_t{kTableSize};
}

void write_code(const Code& code, int n_symbols, std::vector<uint8_t>& out) {
    if (code.single >= 0) {
        out.push_back(0);
        out.push_back(static_cast<uint8_t>(code.single));
        return;
    }
    out.push_back(1);
    for (int s = 0; s < n_symbols; s += 2) {
        const int hi = s + 1 < n_symbols ? code.lengths[s + 1] : 0;
        out.push_back(static_cast<uint8_t>(code.lengths[s] | hi << 4));
    }
}

bool read_code(const uint8_t* data, size_t size, size_t& pos, int n_symbols, Code& code) {
    code = Code{};
    if (n_symbols < 1 || n_symbols > kMaxSymbols || pos >= size) return false;
    const uint8_t mode = data[pos++];
    if (mode == 0) {
        if (pos >= size) return false;
        code.single = data[pos++];
    } else if (mode == 1) {
        const size_t bytes = (static_cast<size_t>(n_symbols) + 1) / 2;
        if (size - pos < bytes) return false;
        for (int s = 0; s < n_symbols; ++s) {
            const uint8_t b = data[pos + s / 2];
            code.lengths[s] = (s & 1) ? b >> 4 : b & 0xf;
        }
        pos += bytes;
    } else {
        return false;
    }
    return code_valid(code, n_symbols);
}

uint64_t coded_bits(const Code& code, const uint32_t* counts, int n_symbols) {
    uint64_t bits = 0;
    for (int s = 0; s < n_symbols; ++s) bits += uint64_t{counts[s]} * code.lengths[s];
    return bits;
}

EncodeTable build_encode_table(const Code& code) {
    EncodeTable table;
    table.code = canonical_reversed_codes(code.lengths);
    table.length = code.lengths;
    return table;
}

void encode_streams(const uint8_t* symbols, size_t n, const EncodeTable& table,
                    std::vector<uint8_t>& out) {
    const size_t header_pos = out.size();
    // Worst case: every symbol at the longest length, plus per-stream padding and 8 bytes of
    // slack for the 64-bit stores below.
    const size_t worst = (n * kMaxCodeLength + 7) / 8 + kStreams + 8;
    out.resize(header_pos + 4 * kStreams + worst);
    uint8_t* const streams_begin = out.data() + header_pos + 4 * kStreams;
    uint8_t* p = streams_begin;
    for (int s = 0; s < kStreams; ++s) {
        const uint8_t* sym = symbols + n * s / kStreams;
        const uint8_t* const end = symbols + n * (s + 1) / kStreams;
        uint8_t* const stream_begin = p;
        uint64_t acc = 0;
        unsigned filled = 0;  // bits in acc, < 8 between flushes
        // Four codes (<= 44 bits) plus < 8 pending bits fit the 64-bit accumulator.
        for (; end - sym >= 4; sym += 4) {
            for (int k = 0; k < 4; ++k) {
                acc |= uint64_t{table.code[sym[k]]} << filled;
                filled += table.length[sym[k]];
            }
            std::memcpy(p, &acc, 8);
            p += filled >> 3;
            acc >>= filled & ~7u;
            filled &= 7;
        }
        for (; sym < end; ++sym) {
            acc |= uint64_t{table.code[*sym]} << filled;
            filled += table.length[*sym];
        }
        std::memcpy(p, &acc, 8);
        p += (filled + 7) >> 3;
        store32(out.data() + header_pos + 4 * s, static_cast<uint32_t>(p - stream_begin));
    }
    out.resize(static_cast<size_t>(p - out.data()));
}

void build_decode_table(const Code& code, DecodeTable& table) {
    table.single = code.single;
    if (code.single >= 0) {
        const auto sym = static_cast<uint32_t>(code.single);
        table.one.fill(static_cast<uint16_t>(sym));
        table.pair.fill(sym | sym << 8 | 2u << 24);
        return;
    }
    const auto codes = canonical_reversed_codes(code.lengths);
    for (int s = 0; s < kMaxSymbols; ++s) {
        const int len = code.lengths[s];
        if (!len) continue;
        for (uint32_t i = codes[s]; i < kTableSize; i += 1u << len)
            table.one[i] = static_cast<uint16_t>(s | len << 8);
    }
    // Pair a code with the next one whenever both fit in the table index.
    for (uint32_t i = 0; i < kTableSize; ++i) {
        const uint32_t first = table.one[i];
        const uint32_t len1 = first >> 8;
        const uint32_t second = table.one[i >> len1];
        const uint32_t len2 = second >> 8;
        if (len1 + len2 <= kMaxCodeLength) {
            table.pair[i] = (first & 0xff) | (second & 0xff) << 8 | (len1 + len2) << 16 | 2u << 24;
        } else {
            table.pair[i] = (first & 0xff) | len1 << 16 | 1u << 24;
        }
    }
}

namespace {

struct Lane {
    size_t offset;    // of the stream in data
    uint64_t bitpos;  // bits consumed
    uint8_t* out;
    uint8_t* end;
};

// A 64-bit load at a byte-aligned position leaves >= 57 valid bits: 5 codes of <= 11 bits.
constexpr int kLookupsPerLoad = 5;
constexpr ptrdiff_t kMaxOutPerLoad = 2 * kLookupsPerLoad;

// Decodes from N lanes side by side while every lane has 8 readable bytes and room for a full
// round of output; the lanes' dependency chains interleave, which is where the speed comes from.
template <int N>
void decode_fast(Lane* lanes, const uint8_t* data, size_t size, const uint32_t* pair) {
    size_t offset[N];
    uint64_t bitpos[N];
    uint8_t* out[N];
    uint8_t* end[N];
    for (int i = 0; i < N; ++i) {
        offset[i] = lanes[i].offset;
        bitpos[i] = lanes[i].bitpos;
        out[i] = lanes[i].out;
        end[i] = lanes[i].end;
    }
    for (;;) {
        bool room = true;
        for (int i = 0; i < N; ++i) {
            room &=
                (offset[i] + (bitpos[i] >> 3) + 8 <= size) & (end[i] - out[i] >= kMaxOutPerLoad);
        }
        if (!room) break;
        uint64_t window[N];
        for (int i = 0; i < N; ++i)
            window[i] = load64(data + offset[i] + (bitpos[i] >> 3)) >> (bitpos[i] & 7);
        for (int k = 0; k < kLookupsPerLoad; ++k) {
            for (int i = 0; i < N; ++i) {
                const uint32_t entry = pair[window[i] & (kTableSize - 1)];
                const uint32_t bits = (entry >> 16) & 0xff;
                window[i] >>= bits;
                bitpos[i] += bits;
                store16(out[i], static_cast<uint16_t>(entry));
                out[i] += entry >> 24;
            }
        }
    }
    for (int i = 0; i < N; ++i) {
        lanes[i].bitpos = bitpos[i];
        lanes[i].out = out[i];
    }
}

// The last few symbols of a lane: one code per lookup, loads that zero-fill past the data.
void decode_tail(Lane& lane, const uint8_t* data, size_t size, const uint16_t* one) {
    while (lane.out < lane.end) {
        const size_t at = lane.offset + (lane.bitpos >> 3);
        uint64_t window = 0;
        if (at + 8 <= size) {
            window = load64(data + at);
        } else {
            for (size_t b = 0; at + b < size && b < 8; ++b)
                window |= uint64_t{data[at + b]} << (8 * b);
        }
        const uint32_t entry = one[(window >> (lane.bitpos & 7)) & (kTableSize - 1)];
        *lane.out++ = static_cast<uint8_t>(entry);
        lane.bitpos += entry >> 8;
    }
}

}  // namespace

bool decode_streams(const uint8_t* data, size_t size, size_t& pos, const DecodeTable& table,
                    uint8_t* out, size_t n) {
    if (pos > size || size - pos < 4 * kStreams) return false;
    uint64_t stream_size[kStreams];
    uint64_t total = 0;
    for (int s = 0; s < kStreams; ++s) {
        stream_size[s] = load32(data + pos + 4 * s);
        total += stream_size[s];
    }
    pos += 4 * kStreams;
    if (total > size - pos) return false;

    if (table.single >= 0) {  // zero-bit code: nothing was written
        if (total != 0) return false;
        if (n) std::memset(out, table.single, n);
        return true;
    }

    // Only the bytes of these streams may be read: a corrupt stream must not reach later data,
    // so decoding sees data[0, streams_end).
    const size_t streams_end = pos + total;
    Lane lanes[kStreams];
    size_t offset = pos;
    for (int s = 0; s < kStreams; ++s) {
        lanes[s] = {offset, 0, out + n * s / kStreams, out + n * (s + 1) / kStreams};
        offset += stream_size[s];
    }
    decode_fast<kStreams>(lanes, data, streams_end, table.pair.data());
    for (Lane& lane : lanes) {
        decode_fast<1>(&lane, data, streams_end, table.pair.data());
        decode_tail(lane, data, streams_end, table.one.data());
    }
    // Each stream must have used exactly its bytes (the encoder pads only to a byte boundary).
    for (int s = 0; s < kStreams; ++s) {
        if ((lanes[s].bitpos + 7) / 8 != stream_size[s]) return false;
    }
    pos = streams_end;
    return true;
}

void histogram(const uint8_t* symbols, size_t n, uint32_t* counts) {
    // Four tables break the store-to-load dependency when neighbouring symbols repeat.
    uint32_t partial[4][kMaxSymbols] = {};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        ++partial[0][symbols[i]];
        ++partial[1][symbols[i + 1]];
        ++partial[2][symbols[i + 2]];
        ++partial[3][symbols[i + 3]];
    }
    for (; i < n; ++i) ++partial[0][symbols[i]];
    for (int s = 0; s < kMaxSymbols; ++s)
        counts[s] = partial[0][s] + partial[1][s] + partial[2][s] + partial[3][s];
}

}  // namespace sparkv::codec::huffman
