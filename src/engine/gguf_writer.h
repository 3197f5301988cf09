// GGUF writer, used to build small random-weight models for tests and peer comparisons.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "engine/ggml_types.h"
#include "engine/gguf.h"

namespace sparkv {

class GgufWriter {
  public:
    void set_u32(std::string key, uint32_t value);
    void set_i32(std::string key, int32_t value);
    void set_u64(std::string key, uint64_t value);
    void set_f32(std::string key, float value);
    void set_bool(std::string key, bool value);
    void set_string(std::string key, std::string value);
    void set_string_array(std::string key, std::vector<std::string> values);
    void set_f32_array(std::string key, std::vector<float> values);
    void set_i32_array(std::string key, std::vector<int32_t> values);
    // Copies a value read from another file, whatever its type.
    void copy_value(std::string key, const GgufValue& value);

    // Adds a tensor whose data is already encoded in `type` (row-major, ne[0] contiguous).
    void add_tensor(std::string name, GgmlType type, std::vector<int64_t> shape,
                    std::vector<uint8_t> data);

    // Serialises the whole file (version 3, alignment 32).
    std::vector<uint8_t> serialize() const;
    // Writes atomically (temp file + rename).
    void write(const std::string& path) const;

  private:
    struct Entry {
        std::string key;
        GgufValueType type;
        GgufValueType elem_type = GgufValueType::UINT8;
        std::vector<uint8_t> payload;  // little-endian value bytes (arrays: count + elements)
    };
    struct Tensor {
        std::string name;
        GgmlType type;
        std::vector<int64_t> shape;
        std::vector<uint8_t> data;
    };
    void put(std::string key, GgufValueType type, std::vector<uint8_t> payload,
             GgufValueType elem_type = GgufValueType::UINT8);

    std::vector<Entry> entries_;
    std::vector<Tensor> tensors_;
};

}  // namespace sparkv
