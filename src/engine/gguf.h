// GGUF reader: memory-maps the file and validates every count, offset and size against it before
// anything is dereferenced. A truncated or corrupt file is an Error with a message, never a crash.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/ggml_types.h"

namespace sparkv {

enum class GgufValueType : uint32_t {
    UINT8 = 0,
    INT8 = 1,
    UINT16 = 2,
    INT16 = 3,
    UINT32 = 4,
    INT32 = 5,
    FLOAT32 = 6,
    BOOL = 7,
    STRING = 8,
    ARRAY = 9,
    UINT64 = 10,
    INT64 = 11,
    FLOAT64 = 12,
};

std::string_view gguf_value_type_name(GgufValueType type);
// Bytes of one scalar of the type (0 for STRING and ARRAY).
size_t gguf_scalar_size(GgufValueType type);

// One metadata value. Scalars are widened into the matching field; arrays point into the mapping.
struct GgufValue {
    GgufValueType type = GgufValueType::UINT8;
    // Scalars.
    uint64_t u = 0;
    int64_t i = 0;
    double f = 0;
    std::string_view str;
    // Arrays: element type and count; numeric elements stay in the file (little-endian, packed),
    // strings are indexed.
    GgufValueType elem_type = GgufValueType::UINT8;
    uint64_t count = 0;
    const uint8_t* data = nullptr;
    std::vector<std::string_view> strings;
};

struct GgufTensorInfo {
    std::string name;
    GgmlType type = GgmlType::F32;
    int n_dims = 0;
    int64_t ne[4] = {1, 1, 1, 1};  // ne[0] is the contiguous (row) dimension
    uint64_t offset = 0;           // from the start of the data section
    size_t bytes = 0;
    const uint8_t* data = nullptr;

    int64_t elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
    int64_t rows() const { return ne[1] * ne[2] * ne[3]; }
    std::string shape_string() const;
};

class GgufFile {
  public:
    // Memory-maps and parses a file. Throws Error naming the file and the problem.
    static GgufFile open(const std::string& path);
    // Parses a buffer the caller keeps alive (tests, fuzzing).
    static GgufFile parse(const uint8_t* data, size_t size, std::string source_name = "<memory>");

    GgufFile(GgufFile&&) noexcept;
    GgufFile& operator=(GgufFile&&) noexcept;
    ~GgufFile();

    const std::string& source() const { return source_; }
    uint32_t version() const { return version_; }
    size_t alignment() const { return alignment_; }
    size_t file_size() const { return size_; }
    const uint8_t* bytes() const { return base_; }  // the whole file, as mapped

    const std::map<std::string, GgufValue, std::less<>>& metadata() const { return metadata_; }
    const GgufValue* find(std::string_view key) const;
    bool has(std::string_view key) const { return find(key) != nullptr; }

    // Typed getters: throw if the key is missing (unless a default is given) or has a type that
    // cannot be converted without loss.
    std::string get_string(std::string_view key) const;
    std::string get_string(std::string_view key, std::string_view fallback) const;
    uint64_t get_uint(std::string_view key) const;
    uint64_t get_uint(std::string_view key, uint64_t fallback) const;
    int64_t get_int(std::string_view key, int64_t fallback) const;
    double get_float(std::string_view key) const;
    double get_float(std::string_view key, double fallback) const;
    bool get_bool(std::string_view key, bool fallback) const;
    // Array getters check the element type.
    const std::vector<std::string_view>& get_string_array(std::string_view key) const;
    std::vector<float> get_float_array(std::string_view key) const;
    std::vector<int64_t> get_int_array(std::string_view key) const;

    const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
    const GgufTensorInfo* find_tensor(std::string_view name) const;

  private:
    GgufFile() = default;
    void parse_all();

    std::string source_;
    const uint8_t* base_ = nullptr;
    size_t size_ = 0;
    void* mapping_ = nullptr;  // owned mmap, or null for parse()
    uint32_t version_ = 0;
    size_t alignment_ = 32;
    std::map<std::string, GgufValue, std::less<>> metadata_;
    std::vector<GgufTensorInfo> tensors_;
    std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace sparkv
