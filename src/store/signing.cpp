#include "store/signing.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "store/crypto.h"

namespace sparkv {

namespace {

constexpr std::string_view kSecretTag = "sparkv-ed25519-secret-key";
constexpr std::string_view kPublicTag = "sparkv-ed25519-public-key";

static_assert(crypto_sign_PUBLICKEYBYTES == 32 && crypto_sign_SECRETKEYBYTES == 64 &&
              crypto_sign_BYTES == 64);

// The single line of a key file, after its tag. Key files are tiny; anything long is not one.
std::string read_key_line(const std::string& path, std::string_view tag, const char* what) {
    std::ifstream in(path);
    if (!in) fail("{} {}: cannot open ({})", what, path, std::strerror(errno));
    std::string text(4096, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
        text.pop_back();
    if (!text.starts_with(tag) || text.size() <= tag.size() || text[tag.size()] != ' ')
        fail("{} {}: not a SparKV {} (it should start with \"{}\")", what, path, what, tag);
    return text.substr(tag.size() + 1);
}

void write_file(const std::string& path, std::string_view text, mode_t mode) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        fail("cannot create {}: {}{}", path, std::strerror(errno),
             errno == EEXIST ? " (remove it first or choose another --out)" : "");
    bool ok = ::fchmod(fd, mode) == 0;  // whatever the umask
    size_t done = 0;
    while (ok && done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        ok = n > 0;
        if (ok) done += static_cast<size_t>(n);
    }
    ok = ok && ::fsync(fd) == 0;
    const int saved = errno;
    ::close(fd);
    if (!ok) {
        ::unlink(path.c_str());
        fail("cannot write {}: {}", path, std::strerror(saved));
    }
}

}  // namespace

std::string PublicKey::id() const {
    const Sha256Digest digest = sha256(bytes);
    return to_hex(std::span(digest).first(8));
}

std::string PublicKey::hex() const {
    return to_hex(bytes);
}

PublicKey PublicKey::from_hex(std::string_view text) {
    PublicKey key;
    if (!parse_hex(text, key.bytes))
        fail("\"{}\" is not an Ed25519 public key (64 lowercase hex digits)", text.substr(0, 80));
    return key;
}

PublicKey load_public_key(const std::string& path) {
    const std::string hex = read_key_line(path, kPublicTag, "public key");
    try {
        return PublicKey::from_hex(hex);
    } catch (const Error&) {
        fail("public key {}: the key is not 64 lowercase hex digits", path);
    }
}

bool verify_signature(const PublicKey& key, std::span<const uint8_t> message,
                      const Ed25519Signature& signature) {
    crypto_init();
    return crypto_sign_verify_detached(signature.data(), message.data(), message.size(),
                                       key.bytes.data()) == 0;
}

SigningKey SigningKey::generate() {
    crypto_init();
    SigningKey key;
    crypto_sign_keypair(key.public_.bytes.data(), key.secret_.data());
    return key;
}

SigningKey SigningKey::load(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0)
        fail("secret key {}: cannot open ({})", path, std::strerror(errno));
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        fail("secret key {}: readable by others (mode {:04o}); run chmod 600 {}", path,
             st.st_mode & 07777, path);
    std::string hex = read_key_line(path, kSecretTag, "secret key");
    crypto_init();
    SigningKey key;
    const bool ok = parse_hex(hex, key.secret_);
    sodium_memzero(hex.data(), hex.size());
    if (!ok) fail("secret key {}: the key is not 128 lowercase hex digits", path);
    crypto_sign_ed25519_sk_to_pk(key.public_.bytes.data(), key.secret_.data());
    // The secret key embeds its public half; a file whose halves disagree is damaged.
    std::array<uint8_t, 32> seed;
    crypto_sign_ed25519_sk_to_seed(seed.data(), key.secret_.data());
    std::array<uint8_t, 32> pk;
    std::array<uint8_t, 64> sk;
    crypto_sign_seed_keypair(pk.data(), sk.data(), seed.data());
    const bool consistent = sodium_memcmp(sk.data(), key.secret_.data(), sk.size()) == 0;
    sodium_memzero(seed.data(), seed.size());
    sodium_memzero(sk.data(), sk.size());
    if (!consistent) fail("secret key {}: damaged (its public half does not match)", path);
    return key;
}

SigningKey::~SigningKey() {
    sodium_memzero(secret_.data(), secret_.size());
}

SigningKey::SigningKey(SigningKey&& other) noexcept
    : secret_(other.secret_), public_(other.public_) {
    sodium_memzero(other.secret_.data(), other.secret_.size());
}

SigningKey& SigningKey::operator=(SigningKey&& other) noexcept {
    if (this != &other) {
        secret_ = other.secret_;
        public_ = other.public_;
        sodium_memzero(other.secret_.data(), other.secret_.size());
    }
    return *this;
}

Ed25519Signature SigningKey::sign(std::span<const uint8_t> message) const {
    Ed25519Signature signature;
    crypto_sign_detached(signature.data(), nullptr, message.data(), message.size(), secret_.data());
    return signature;
}

void SigningKey::write_files(const std::string& prefix) const {
    if (prefix.empty()) fail("keygen: --out needs a path prefix, e.g. keys/cloud");
    std::string secret_line = fmt::format("{} {}\n", kSecretTag, to_hex(secret_));
    const std::string secret_path = prefix + ".key", public_path = prefix + ".pub";
    // The public file first: if it cannot be written, no secret is left behind unused.
    write_file(public_path, fmt::format("{} {}\n", kPublicTag, public_.hex()), 0644);
    try {
        write_file(secret_path, secret_line, 0600);
    } catch (...) {
        sodium_memzero(secret_line.data(), secret_line.size());
        ::unlink(public_path.c_str());
        throw;
    }
    sodium_memzero(secret_line.data(), secret_line.size());
}

}  // namespace sparkv
