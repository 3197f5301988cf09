#include "engine/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace sparkv {

namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint64_t kMaxDims = 4;

}  // namespace

size_t gguf_scalar_size(GgufValueType type) {
    switch (type) {
        case GgufValueType::UINT8:
        case GgufValueType::INT8:
        case GgufValueType::BOOL:
            return 1;
        case GgufValueType::UINT16:
        case GgufValueType::INT16:
            return 2;
        case GgufValueType::UINT32:
        case GgufValueType::INT32:
        case GgufValueType::FLOAT32:
            return 4;
        case GgufValueType::UINT64:
        case GgufValueType::INT64:
        case GgufValueType::FLOAT64:
            return 8;
        default:
            return 0;
    }
}

namespace {

size_t scalar_size(GgufValueType type) {
    return gguf_scalar_size(type);
}

// Bounds-checked little-endian cursor over the file.
class Cursor {
  public:
    Cursor(const uint8_t* data, size_t size, const std::string& source)
        : data_(data), size_(size), source_(source) {}

    size_t pos() const { return pos_; }
    size_t remaining() const { return size_ - pos_; }

    const uint8_t* take(size_t n, const char* what) {
        if (n > remaining())
            fail("{}: truncated file: {} needs {} bytes at offset {}, only {} left", source_, what,
                 n, pos_, remaining());
        const uint8_t* p = data_ + pos_;
        pos_ += n;
        return p;
    }

    template <typename T>
    T read(const char* what) {
        T value;
        std::memcpy(&value, take(sizeof(T), what), sizeof(T));
        return value;
    }

    std::string_view read_string(const char* what) {
        const auto length = read<uint64_t>(what);
        if (length > remaining())
            fail("{}: corrupt file: {} has length {} at offset {} but only {} bytes remain",
                 source_, what, length, pos_ - 8, remaining());
        const auto* p = take(length, what);
        return {reinterpret_cast<const char*>(p), length};
    }

    [[noreturn]] void corrupt(const std::string& message) const {
        fail("{}: corrupt file at offset {}: {}", source_, pos_, message);
    }

  private:
    const uint8_t* data_;
    size_t size_;
    size_t pos_ = 0;
    const std::string& source_;
};

GgufValueType checked_value_type(Cursor& cur, uint32_t raw) {
    if (raw > static_cast<uint32_t>(GgufValueType::FLOAT64))
        cur.corrupt(fmt::format("unknown metadata value type {}", raw));
    return static_cast<GgufValueType>(raw);
}

void read_scalar(Cursor& cur, GgufValueType type, GgufValue& v) {
    switch (type) {
        case GgufValueType::UINT8:
            v.u = cur.read<uint8_t>("u8");
            v.i = static_cast<int64_t>(v.u);
            break;
        case GgufValueType::INT8:
            v.i = cur.read<int8_t>("i8");
            break;
        case GgufValueType::UINT16:
            v.u = cur.read<uint16_t>("u16");
            v.i = static_cast<int64_t>(v.u);
            break;
        case GgufValueType::INT16:
            v.i = cur.read<int16_t>("i16");
            break;
        case GgufValueType::UINT32:
            v.u = cur.read<uint32_t>("u32");
            v.i = static_cast<int64_t>(v.u);
            break;
        case GgufValueType::INT32:
            v.i = cur.read<int32_t>("i32");
            break;
        case GgufValueType::UINT64:
            v.u = cur.read<uint64_t>("u64");
            v.i = static_cast<int64_t>(v.u);
            break;
        case GgufValueType::INT64:
            v.i = cur.read<int64_t>("i64");
            break;
        case GgufValueType::FLOAT32:
            v.f = cur.read<float>("f32");
            break;
        case GgufValueType::FLOAT64:
            v.f = cur.read<double>("f64");
            break;
        case GgufValueType::BOOL: {
            const auto b = cur.read<uint8_t>("bool");
            if (b > 1) cur.corrupt(fmt::format("bool value {}", b));
            v.u = b;
            v.i = b;
            break;
        }
        default:
            cur.corrupt("not a scalar type");
    }
    // Signed values that are non-negative are also readable as unsigned.
    if (v.i >= 0 && v.u == 0) v.u = static_cast<uint64_t>(v.i);
}

GgufValue read_value(Cursor& cur, GgufValueType type) {
    GgufValue v;
    v.type = type;
    if (type == GgufValueType::STRING) {
        v.str = cur.read_string("string value");
    } else if (type == GgufValueType::ARRAY) {
        v.elem_type = checked_value_type(cur, cur.read<uint32_t>("array type"));
        v.count = cur.read<uint64_t>("array length");
        if (v.elem_type == GgufValueType::ARRAY) cur.corrupt("nested arrays are not supported");
        if (v.elem_type == GgufValueType::STRING) {
            if (v.count > cur.remaining() / 8)
                cur.corrupt(fmt::format("string array of {} elements exceeds the file", v.count));
            v.strings.reserve(v.count);
            for (uint64_t k = 0; k < v.count; ++k)
                v.strings.push_back(cur.read_string("array string"));
        } else {
            const size_t elem = scalar_size(v.elem_type);
            if (v.count > cur.remaining() / elem)
                cur.corrupt(fmt::format("array of {} elements exceeds the file", v.count));
            v.data = cur.take(v.count * elem, "array");
            if (v.elem_type == GgufValueType::BOOL)
                for (uint64_t k = 0; k < v.count; ++k)
                    if (v.data[k] > 1) cur.corrupt("bool array element is not 0 or 1");
        }
    } else {
        read_scalar(cur, type, v);
    }
    return v;
}

bool is_integer(GgufValueType t) {
    switch (t) {
        case GgufValueType::UINT8:
        case GgufValueType::INT8:
        case GgufValueType::UINT16:
        case GgufValueType::INT16:
        case GgufValueType::UINT32:
        case GgufValueType::INT32:
        case GgufValueType::UINT64:
        case GgufValueType::INT64:
            return true;
        default:
            return false;
    }
}

bool is_signed(GgufValueType t) {
    return t == GgufValueType::INT8 || t == GgufValueType::INT16 || t == GgufValueType::INT32 ||
           t == GgufValueType::INT64;
}

template <typename T>
T load_le(const uint8_t* p) {
    T value;
    std::memcpy(&value, p, sizeof value);
    return value;
}

}  // namespace

std::string_view gguf_value_type_name(GgufValueType type) {
    static constexpr std::string_view names[] = {"u8",  "i8",  "u16",  "i16",    "u32",
                                                 "i32", "f32", "bool", "string", "array",
                                                 "u64", "i64", "f64"};
    const auto idx = static_cast<uint32_t>(type);
    return idx < std::size(names) ? names[idx] : "unknown";
}

std::string GgufTensorInfo::shape_string() const {
    std::string s = "[";
    for (int d = 0; d < n_dims; ++d) s += (d ? ", " : "") + std::to_string(ne[d]);
    return s + "]";
}

GgufFile::GgufFile(GgufFile&& other) noexcept {
    *this = std::move(other);
}

GgufFile& GgufFile::operator=(GgufFile&& other) noexcept {
    if (this == &other) return *this;
    if (mapping_) munmap(mapping_, size_);
    source_ = std::move(other.source_);
    base_ = other.base_;
    size_ = other.size_;
    mapping_ = other.mapping_;
    version_ = other.version_;
    alignment_ = other.alignment_;
    metadata_ = std::move(other.metadata_);
    tensors_ = std::move(other.tensors_);
    tensor_index_ = std::move(other.tensor_index_);
    other.mapping_ = nullptr;
    other.base_ = nullptr;
    other.size_ = 0;
    return *this;
}

GgufFile::~GgufFile() {
    if (mapping_) munmap(mapping_, size_);
}

GgufFile GgufFile::open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("cannot open model file {}: {}", path, std::strerror(errno));
    struct stat st {};
    if (fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        fail("cannot stat {}: {}", path, std::strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        fail("{} is not a regular file", path);
    }
    if (st.st_size == 0) {
        ::close(fd);
        fail("{}: file is empty, not a GGUF model", path);
    }
    const auto size = static_cast<size_t>(st.st_size);
    void* map = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    const int err = errno;
    ::close(fd);
    if (map == MAP_FAILED) fail("cannot memory-map {}: {}", path, std::strerror(err));

    GgufFile file;
    file.source_ = path;
    file.base_ = static_cast<const uint8_t*>(map);
    file.size_ = size;
    file.mapping_ = map;
    file.parse_all();  // on throw, the destructor unmaps
    return file;
}

GgufFile GgufFile::parse(const uint8_t* data, size_t size, std::string source_name) {
    GgufFile file;
    file.source_ = std::move(source_name);
    file.base_ = data;
    file.size_ = size;
    file.parse_all();
    return file;
}

void GgufFile::parse_all() {
    Cursor cur(base_, size_, source_);
    if (size_ < 4 || load_le<uint32_t>(base_) != kGgufMagic)
        fail("{}: not a GGUF file (bad magic)", source_);
    cur.take(4, "magic");
    version_ = cur.read<uint32_t>("version");
    if (version_ < 2 || version_ > 3)
        fail("{}: unsupported GGUF version {} (SparKV reads versions 2 and 3)", source_, version_);
    const auto n_tensors = cur.read<uint64_t>("tensor count");
    const auto n_kv = cur.read<uint64_t>("metadata count");
    // Each metadata entry takes at least 12 bytes, each tensor entry at least 32.
    if (n_kv > cur.remaining() / 12)
        cur.corrupt(fmt::format("metadata count {} exceeds the file", n_kv));
    if (n_tensors > cur.remaining() / 32)
        cur.corrupt(fmt::format("tensor count {} exceeds the file", n_tensors));

    for (uint64_t k = 0; k < n_kv; ++k) {
        const auto key = cur.read_string("metadata key");
        const auto type = checked_value_type(cur, cur.read<uint32_t>("metadata type"));
        GgufValue value = read_value(cur, type);
        if (!metadata_.emplace(std::string(key), std::move(value)).second)
            cur.corrupt(fmt::format("duplicate metadata key '{}'", key));
    }

    if (const GgufValue* a = find("general.alignment")) {
        if (!is_integer(a->type) || a->u == 0 || (a->u & (a->u - 1)) != 0 || a->u > (1u << 20))
            fail("{}: general.alignment must be a power of two, got {}", source_, a->u);
        alignment_ = a->u;
    }

    tensors_.reserve(n_tensors);
    for (uint64_t k = 0; k < n_tensors; ++k) {
        GgufTensorInfo t;
        t.name = std::string(cur.read_string("tensor name"));
        const auto n_dims = cur.read<uint32_t>("tensor dims");
        if (n_dims == 0 || n_dims > kMaxDims)
            cur.corrupt(
                fmt::format("tensor '{}' has {} dimensions (1 to 4 allowed)", t.name, n_dims));
        t.n_dims = static_cast<int>(n_dims);
        uint64_t elements = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            const auto ne = cur.read<uint64_t>("tensor dim");
            if (ne == 0 || ne > (uint64_t{1} << 40) || elements > (uint64_t{1} << 48) / ne)
                cur.corrupt(fmt::format("tensor '{}' has an invalid dimension {}", t.name, ne));
            elements *= ne;
            t.ne[d] = static_cast<int64_t>(ne);
        }
        const auto raw_type = cur.read<uint32_t>("tensor type");
        const auto traits = ggml_type_traits(raw_type);
        if (!traits) fail("{}: tensor '{}' has unknown type {}", source_, t.name, raw_type);
        t.type = static_cast<GgmlType>(raw_type);
        if (t.ne[0] % traits->block_elements != 0)
            fail("{}: tensor '{}' of type {} has a row of {} elements, not a multiple of {}",
                 source_, t.name, traits->name, t.ne[0], traits->block_elements);
        t.bytes = static_cast<size_t>(t.rows()) *
                  (static_cast<size_t>(t.ne[0] / traits->block_elements) * traits->block_bytes);
        t.offset = cur.read<uint64_t>("tensor offset");
        if (t.offset % alignment_ != 0)
            fail("{}: tensor '{}' offset {} is not aligned to {}", source_, t.name, t.offset,
                 alignment_);
        if (!tensor_index_.emplace(t.name, tensors_.size()).second)
            fail("{}: duplicate tensor name '{}'", source_, t.name);
        tensors_.push_back(std::move(t));
    }

    const size_t data_start = (cur.pos() + alignment_ - 1) / alignment_ * alignment_;
    if (data_start > size_ && !tensors_.empty())
        fail("{}: truncated file: tensor data section would start at {} past the end ({} bytes)",
             source_, data_start, size_);
    const size_t data_size = data_start <= size_ ? size_ - data_start : 0;
    for (auto& t : tensors_) {
        if (t.offset > data_size || t.bytes > data_size - t.offset)
            fail(
                "{}: truncated or corrupt file: tensor '{}' ({} bytes at data offset {}) extends "
                "past the end of the file ({} data bytes)",
                source_, t.name, t.bytes, t.offset, data_size);
        t.data = base_ + data_start + t.offset;
    }
    // Tensors must not overlap: a writer bug or a crafted file could alias weights.
    std::vector<const GgufTensorInfo*> by_offset;
    for (const auto& t : tensors_) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(),
              [](auto* a, auto* b) { return a->offset < b->offset; });
    for (size_t k = 1; k < by_offset.size(); ++k)
        if (by_offset[k - 1]->offset + by_offset[k - 1]->bytes > by_offset[k]->offset)
            fail("{}: corrupt file: tensors '{}' and '{}' overlap", source_, by_offset[k - 1]->name,
                 by_offset[k]->name);
}

const GgufValue* GgufFile::find(std::string_view key) const {
    auto it = metadata_.find(key);
    return it == metadata_.end() ? nullptr : &it->second;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::string GgufFile::get_string(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) fail("{}: missing metadata key '{}'", source_, key);
    if (v->type != GgufValueType::STRING)
        fail("{}: metadata '{}' is {}, expected a string", source_, key,
             gguf_value_type_name(v->type));
    return std::string(v->str);
}

std::string GgufFile::get_string(std::string_view key, std::string_view fallback) const {
    return has(key) ? get_string(key) : std::string(fallback);
}

uint64_t GgufFile::get_uint(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) fail("{}: missing metadata key '{}'", source_, key);
    if (!is_integer(v->type) || (is_signed(v->type) && v->i < 0))
        fail("{}: metadata '{}' is {}, expected a non-negative integer", source_, key,
             gguf_value_type_name(v->type));
    return v->u;
}

uint64_t GgufFile::get_uint(std::string_view key, uint64_t fallback) const {
    return has(key) ? get_uint(key) : fallback;
}

int64_t GgufFile::get_int(std::string_view key, int64_t fallback) const {
    const GgufValue* v = find(key);
    if (!v) return fallback;
    if (!is_integer(v->type))
        fail("{}: metadata '{}' is {}, expected an integer", source_, key,
             gguf_value_type_name(v->type));
    return v->i;
}

double GgufFile::get_float(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) fail("{}: missing metadata key '{}'", source_, key);
    if (v->type == GgufValueType::FLOAT32 || v->type == GgufValueType::FLOAT64) return v->f;
    if (is_integer(v->type))
        return is_signed(v->type) ? static_cast<double>(v->i) : static_cast<double>(v->u);
    fail("{}: metadata '{}' is {}, expected a number", source_, key, gguf_value_type_name(v->type));
}

double GgufFile::get_float(std::string_view key, double fallback) const {
    return has(key) ? get_float(key) : fallback;
}

bool GgufFile::get_bool(std::string_view key, bool fallback) const {
    const GgufValue* v = find(key);
    if (!v) return fallback;
    if (v->type != GgufValueType::BOOL)
        fail("{}: metadata '{}' is {}, expected a bool", source_, key,
             gguf_value_type_name(v->type));
    return v->u != 0;
}

const std::vector<std::string_view>& GgufFile::get_string_array(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) fail("{}: missing metadata key '{}'", source_, key);
    if (v->type != GgufValueType::ARRAY || v->elem_type != GgufValueType::STRING)
        fail("{}: metadata '{}' is not an array of strings", source_, key);
    return v->strings;
}

std::vector<float> GgufFile::get_float_array(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) fail("{}: missing metadata key '{}'", source_, key);
    if (v->type != GgufValueType::ARRAY) fail("{}: metadata '{}' is not an array", source_, key);
    std::vector<float> out(v->count);
    for (uint64_t k = 0; k < v->count; ++k) {
        switch (v->elem_type) {
            case GgufValueType::FLOAT32:
                out[k] = load_le<float>(v->data + 4 * k);
                break;
            case GgufValueType::FLOAT64:
                out[k] = static_cast<float>(load_le<double>(v->data + 8 * k));
                break;
            default:
                fail("{}: metadata '{}' is an array of {}, expected floats", source_, key,
                     gguf_value_type_name(v->elem_type));
        }
    }
    return out;
}

std::vector<int64_t> GgufFile::get_int_array(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) fail("{}: missing metadata key '{}'", source_, key);
    if (v->type != GgufValueType::ARRAY) fail("{}: metadata '{}' is not an array", source_, key);
    std::vector<int64_t> out(v->count);
    for (uint64_t k = 0; k < v->count; ++k) {
        const uint8_t* p = v->data + k * scalar_size(v->elem_type);
        switch (v->elem_type) {
            case GgufValueType::UINT8:
            case GgufValueType::BOOL:
                out[k] = *p;
                break;
            case GgufValueType::INT8:
                out[k] = static_cast<int8_t>(*p);
                break;
            case GgufValueType::UINT16:
                out[k] = load_le<uint16_t>(p);
                break;
            case GgufValueType::INT16:
                out[k] = load_le<int16_t>(p);
                break;
            case GgufValueType::UINT32:
                out[k] = load_le<uint32_t>(p);
                break;
            case GgufValueType::INT32:
                out[k] = load_le<int32_t>(p);
                break;
            case GgufValueType::UINT64:
                out[k] = static_cast<int64_t>(load_le<uint64_t>(p));
                break;
            case GgufValueType::INT64:
                out[k] = load_le<int64_t>(p);
                break;
            default:
                fail("{}: metadata '{}' is an array of {}, expected integers", source_, key,
                     gguf_value_type_name(v->elem_type));
        }
    }
    return out;
}

}  // namespace sparkv
