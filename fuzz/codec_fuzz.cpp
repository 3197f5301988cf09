// libFuzzer target for the unit decoder. The input is an encoded unit whose checksums are
// recomputed first (a hostile sender can always produce valid checksums), so the fuzzer reaches
// the payload parser, the Huffman decoder and the dequantisers. Any crash, hang, sanitizer report
// or exception other than sparkv::Error is a bug.
#include <cstdint>
#include <vector>

#include "codec/codec.h"
#include "codec/unit_format.h"
#include "common/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace sparkv::codec;
    std::vector<uint8_t> unit(data, data + size);
    reseal_unit(unit);
    UnitHeader header;
    try {
        header = read_header(unit);
    } catch (const sparkv::Error&) {
        return 0;
    }
    if (header.shape.elements() > (1u << 20)) return 0;  // keep memory per input small
    std::vector<uint16_t> k(header.shape.elements()), v(header.shape.elements());
    Decoder decoder;
    try {
        decoder.decode(unit, header.key, header.shape, contiguous(k.data(), header.shape),
                       contiguous(v.data(), header.shape));
    } catch (const sparkv::Error&) {
    }
    return 0;
}
