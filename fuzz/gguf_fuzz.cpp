// libFuzzer target for the GGUF parser: any byte string must parse or throw sparkv::Error, and a
// parsed file's tensors must lie inside the buffer.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "common/error.h"
#include "engine/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const auto file = sparkv::GgufFile::parse(data, size, "fuzz");
        for (const auto& t : file.tensors()) {
            if (t.data < data || t.data + t.bytes > data + size) std::abort();
        }
        for (const auto& [key, value] : file.metadata()) {
            (void)key;
            for (const auto s : value.strings)
                if (s.data() < reinterpret_cast<const char*>(data) ||
                    s.data() + s.size() > reinterpret_cast<const char*>(data) + size)
                    std::abort();
        }
    } catch (const sparkv::Error&) {
    }
    return 0;
}
