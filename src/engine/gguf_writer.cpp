#include "engine/gguf_writer.h"

#include <cstdio>
#include <cstring>
#include <fstream>

#include "common/error.h"

namespace sparkv {

namespace {

constexpr size_t kAlignment = 32;

template <typename T>
void append(std::vector<uint8_t>& out, T value) {
    const size_t at = out.size();
    out.resize(at + sizeof(T));
    std::memcpy(out.data() + at, &value, sizeof(T));
}

void append_string(std::vector<uint8_t>& out, std::string_view s) {
    append<uint64_t>(out, s.size());
    const size_t at = out.size();
    out.resize(at + s.size());
    if (!s.empty()) std::memcpy(out.data() + at, s.data(), s.size());
}

}  // namespace

void GgufWriter::put(std::string key, GgufValueType type, std::vector<uint8_t> payload,
                     GgufValueType elem_type) {
    for (auto& e : entries_) {
        if (e.key == key) {
            e = Entry{std::move(key), type, elem_type, std::move(payload)};
            return;
        }
    }
    entries_.push_back(Entry{std::move(key), type, elem_type, std::move(payload)});
}

void GgufWriter::set_u32(std::string key, uint32_t value) {
    std::vector<uint8_t> p;
    append(p, value);
    put(std::move(key), GgufValueType::UINT32, std::move(p));
}

void GgufWriter::set_i32(std::string key, int32_t value) {
    std::vector<uint8_t> p;
    append(p, value);
    put(std::move(key), GgufValueType::INT32, std::move(p));
}

void GgufWriter::set_u64(std::string key, uint64_t value) {
    std::vector<uint8_t> p;
    append(p, value);
    put(std::move(key), GgufValueType::UINT64, std::move(p));
}

void GgufWriter::set_f32(std::string key, float value) {
    std::vector<uint8_t> p;
    append(p, value);
    put(std::move(key), GgufValueType::FLOAT32, std::move(p));
}

void GgufWriter::set_bool(std::string key, bool value) {
    put(std::move(key), GgufValueType::BOOL, {static_cast<uint8_t>(value ? 1 : 0)});
}

void GgufWriter::set_string(std::string key, std::string value) {
    std::vector<uint8_t> p;
    append_string(p, value);
    put(std::move(key), GgufValueType::STRING, std::move(p));
}

void GgufWriter::set_string_array(std::string key, std::vector<std::string> values) {
    std::vector<uint8_t> p;
    append<uint32_t>(p, static_cast<uint32_t>(GgufValueType::STRING));
    append<uint64_t>(p, values.size());
    for (const auto& s : values) append_string(p, s);
    put(std::move(key), GgufValueType::ARRAY, std::move(p), GgufValueType::STRING);
}

void GgufWriter::set_f32_array(std::string key, std::vector<float> values) {
    std::vector<uint8_t> p;
    append<uint32_t>(p, static_cast<uint32_t>(GgufValueType::FLOAT32));
    append<uint64_t>(p, values.size());
    for (float v : values) append(p, v);
    put(std::move(key), GgufValueType::ARRAY, std::move(p), GgufValueType::FLOAT32);
}

void GgufWriter::set_i32_array(std::string key, std::vector<int32_t> values) {
    std::vector<uint8_t> p;
    append<uint32_t>(p, static_cast<uint32_t>(GgufValueType::INT32));
    append<uint64_t>(p, values.size());
    for (int32_t v : values) append(p, v);
    put(std::move(key), GgufValueType::ARRAY, std::move(p), GgufValueType::INT32);
}

void GgufWriter::copy_value(std::string key, const GgufValue& value) {
    std::vector<uint8_t> p;
    auto append_bytes = [&p](const uint8_t* data, size_t n) {
        const size_t at = p.size();
        p.resize(at + n);
        if (n) std::memcpy(p.data() + at, data, n);
    };
    switch (value.type) {
        case GgufValueType::STRING:
            append_string(p, value.str);
            break;
        case GgufValueType::ARRAY:
            append<uint32_t>(p, static_cast<uint32_t>(value.elem_type));
            append<uint64_t>(p, value.count);
            if (value.elem_type == GgufValueType::STRING) {
                for (const auto s : value.strings) append_string(p, s);
            } else {
                append_bytes(value.data, value.count * gguf_scalar_size(value.elem_type));
            }
            break;
        case GgufValueType::FLOAT32:
            append(p, static_cast<float>(value.f));
            break;
        case GgufValueType::FLOAT64:
            append(p, value.f);
            break;
        case GgufValueType::BOOL:
            append<uint8_t>(p, value.u ? 1 : 0);
            break;
        default: {
            // Integers: the low bytes of the two's-complement value, in the original width.
            const uint64_t bits = static_cast<uint64_t>(value.i);
            uint8_t bytes[8];
            std::memcpy(bytes, &bits, sizeof bytes);
            append_bytes(bytes, gguf_scalar_size(value.type));
        }
    }
    put(std::move(key), value.type, std::move(p), value.elem_type);
}

void GgufWriter::add_tensor(std::string name, GgmlType type, std::vector<int64_t> shape,
                            std::vector<uint8_t> data) {
    if (shape.empty() || shape.size() > 4) fail("tensor '{}': 1 to 4 dimensions allowed", name);
    int64_t rows = 1;
    for (size_t d = 1; d < shape.size(); ++d) rows *= shape[d];
    const auto& traits = ggml_traits(type);
    if (shape[0] % traits.block_elements != 0)
        fail("tensor '{}': row length {} is not a multiple of the {} block size {}", name, shape[0],
             traits.name, traits.block_elements);
    const size_t expected = static_cast<size_t>(rows) * ggml_row_bytes(type, shape[0]);
    if (data.size() != expected)
        fail("tensor '{}': {} data bytes given, shape and type need {}", name, data.size(),
             expected);
    tensors_.push_back(Tensor{std::move(name), type, std::move(shape), std::move(data)});
}

std::vector<uint8_t> GgufWriter::serialize() const {
    std::vector<uint8_t> out;
    append<uint32_t>(out, 0x46554747);  // "GGUF"
    append<uint32_t>(out, 3);
    append<uint64_t>(out, tensors_.size());
    append<uint64_t>(out, entries_.size());
    for (const auto& e : entries_) {
        append_string(out, e.key);
        append<uint32_t>(out, static_cast<uint32_t>(e.type));
        out.insert(out.end(), e.payload.begin(), e.payload.end());
    }
    uint64_t offset = 0;
    for (const auto& t : tensors_) {
        append_string(out, t.name);
        append<uint32_t>(out, static_cast<uint32_t>(t.shape.size()));
        for (int64_t ne : t.shape) append<uint64_t>(out, static_cast<uint64_t>(ne));
        append<uint32_t>(out, static_cast<uint32_t>(t.type));
        append<uint64_t>(out, offset);
        offset += (t.data.size() + kAlignment - 1) / kAlignment * kAlignment;
    }
    out.resize((out.size() + kAlignment - 1) / kAlignment * kAlignment, 0);
    for (const auto& t : tensors_) {
        out.insert(out.end(), t.data.begin(), t.data.end());
        out.resize((out.size() + kAlignment - 1) / kAlignment * kAlignment, 0);
    }
    return out;
}

void GgufWriter::write(const std::string& path) const {
    const auto bytes = serialize();
    const std::string tmp = path + ".tmp";
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        if (!f) fail("cannot create {}", tmp);
        f.write(reinterpret_cast<const char*>(bytes.data()),
                static_cast<std::streamsize>(bytes.size()));
        if (!f) fail("cannot write {}", tmp);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("cannot rename {} to {}", tmp, path);
}

}  // namespace sparkv
