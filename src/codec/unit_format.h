// The byte layout of an encoded unit's header (all fields little-endian, 64 bytes):
//
//   off size field
//    0   4  magic "SKVU"
//    4   2  format version (kFormatVersion)
//    6   2  header size (64)
//    8   8  model fingerprint
//   16   4  chunk t
//   20   4  layer l
//   24   4  n_tokens
//   28   2  n_kv_heads
//   30   2  head_dim
//   32   1  level
//   33   1  K bits        (16 for fp16)
//   34   1  V bits
//   35   1  K grouping    (0 none, 1 per channel, 2 per token and head)
//   36   1  V grouping
//   37   3  reserved, zero
//   40   8  payload size in bytes
//   48   8  xxh64 of the payload (seed 0)
//   56   8  xxh64 of header bytes [0, 56) (seed 0)
//
// Format version 2 (calibrated levels c4..c8) is 80 bytes: the same fields up to offset 56, then
//   56   8  hash of the codec profile used (codec/profile.h)
//   64   2  sink tokens: the unit's first tokens, stored as fp16 sections before the rest
//   66   6  reserved, zero
//   72   8  xxh64 of header bytes [0, 72)
//
// Format version 3 (a calibrated level with salient rows) is version 2 plus
//   66   1  salient bits (2..8): the width of the salient rows' K and V
//   67   1  reserved, zero
//   68   4  salient row count (>= 1)
//
// The payload follows: the K section, then the V section (see section_codec.h). In version 2
// with sink tokens: the sink K (fp16 section), the sink V (fp16 section), then the K and V
// sections of the remaining tokens. Version 3 puts, after the sink sections, the salient row
// list (count x uint32: token indices within the unit, strictly ascending, past the sinks), the
// salient rows' K section (per channel) and V section (per token and head) at the salient
// width, then the K and V sections of the remaining tokens without the salient rows.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "codec/codec.h"

namespace sparkv::codec {

constexpr uint16_t kFormatVersion = 1;
constexpr uint16_t kFormatVersionV2 = 2;
constexpr uint16_t kFormatVersionV3 = 3;

// The format version and header size a level is written with (a calibrated level's unit with
// salient rows is written as version 3, same header size).
uint16_t format_version_for(Level level);
size_t header_size_for(Level level);

// Names a unit, and optionally a section of it, in error messages ("unit (3, 17): K section");
// formatted only when an error is thrown, so the decode path does not allocate.
struct Where {
    const UnitKey* key = nullptr;  // nullptr: a unit not yet identified
    const char* section = nullptr;
    std::string str() const;
};

// Writes the header for `header` (whose payload fields must already describe the payload) into
// out[0, header_size_for(level)); computes the header checksum.
void write_header(const UnitHeader& header, uint8_t* out);

// Parses the header and checks what the unit itself can prove: size, magic, version, header
// checksum, field ranges, payload size.
UnitHeader parse_header(std::span<const uint8_t> unit, Where where);

uint64_t payload_checksum(std::span<const uint8_t> payload);

// Recomputes both checksums of an encoded unit in place (for fuzzing and corruption tests that
// must reach the payload parser). Requires at least kHeaderSize bytes.
void reseal_unit(std::span<uint8_t> unit);

}  // namespace sparkv::codec
