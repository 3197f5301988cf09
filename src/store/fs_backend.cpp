#include "store/fs_backend.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <thread>
#include <utility>

#include "common/error.h"

namespace sparkv {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kTempPrefix = ".tmp-";

std::string errno_text() {
    return std::strerror(errno);
}

// Closes a file descriptor when it goes out of scope.
class Fd {
  public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }

  private:
    int fd_;
};

void fsync_dir(const fs::path& dir) {
    Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0 || ::fsync(fd.get()) != 0)
        fail("store: cannot sync directory {}: {}", dir.string(), errno_text());
}

// Creates dir and its missing parents, syncing each parent so the new entries survive a crash.
void ensure_dir(const fs::path& dir) {
    if (fs::is_directory(dir)) return;
    ensure_dir(dir.parent_path());
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
        fail("store: cannot create directory {}: {}", dir.string(), errno_text());
    fsync_dir(dir.parent_path());
}

void write_all(int fd, std::span<const uint8_t> bytes, const fs::path& path) {
    size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail("store: cannot write {}: {}", path.string(), errno_text());
        done += static_cast<size_t>(n);
    }
}

size_t pread_full(int fd, uint64_t offset, std::span<uint8_t> dst, const std::string& what) {
    size_t done = 0;
    while (done < dst.size()) {
        const ssize_t n =
            ::pread(fd, dst.data() + done, dst.size() - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail("store: cannot read {}: {}", what, errno_text());
        if (n == 0) break;
        done += static_cast<size_t>(n);
    }
    return done;
}

class FileReader final : public ObjectReader {
  public:
    FileReader(int fd, uint64_t size, std::string key)
        : fd_(fd), size_(size), key_(std::move(key)) {}
    uint64_t size() const override { return size_; }
    size_t read_at(uint64_t offset, std::span<uint8_t> dst) override {
        if (offset >= size_) return 0;
        const auto n = static_cast<size_t>(std::min<uint64_t>(dst.size(), size_ - offset));
        return pread_full(fd_.get(), offset, dst.first(n), key_);
    }

  private:
    Fd fd_;
    uint64_t size_;
    std::string key_;
};

bool is_inside(const fs::path& path, const fs::path& root) {
    auto p = path.begin();
    for (auto r = root.begin(); r != root.end(); ++r, ++p)
        if (p == path.end() || *p != *r) return false;
    return true;
}

}  // namespace

bool is_valid_key(std::string_view key) {
    if (key.empty() || key.size() > 1024) return false;
    size_t start = 0;
    while (start <= key.size()) {
        size_t end = key.find('/', start);
        if (end == std::string_view::npos) end = key.size();
        const std::string_view segment = key.substr(start, end - start);
        if (segment.empty() || segment.front() == '.') return false;  // also rejects "." and ".."
        for (char c : segment)
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.'))
                return false;
        start = end + 1;
    }
    return true;
}

void validate_key(std::string_view key) {
    if (!is_valid_key(key))
        fail("store: \"{}\" is not a valid object key (relative path of [A-Za-z0-9_.-] segments)",
             key);
}

FilesystemBackend::FilesystemBackend(fs::path root) {
    std::error_code ec;
    fs::create_directories(root, ec);
    if (!fs::is_directory(root))
        fail("store: {} is not a directory and cannot be created{}", root.string(),
             ec ? ": " + ec.message() : "");
    root_ = fs::canonical(root);
}

fs::path FilesystemBackend::resolve(std::string_view key) const {
    validate_key(key);
    const fs::path path = root_ / fs::path(std::string(key));
    std::error_code ec;
    const fs::path real = fs::weakly_canonical(path, ec);
    if (ec) fail("store: cannot resolve {}: {}", path.string(), ec.message());
    if (!is_inside(real, root_))
        fail("store: object {} resolves to {}, outside the store {}", key, real.string(),
             root_.string());
    return path;
}

bool FilesystemBackend::contains(std::string_view key) const {
    return size(key).has_value();
}

std::optional<uint64_t> FilesystemBackend::size(std::string_view key) const {
    struct stat st;
    if (::stat(resolve(key).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    return static_cast<uint64_t>(st.st_size);
}

void FilesystemBackend::put(std::string_view key, std::span<const uint8_t> bytes) {
    const fs::path path = resolve(key);
    const fs::path dir = path.parent_path();
    ensure_dir(dir);
    // Unique per process, thread and call, so concurrent writers never share a temporary file.
    const auto thread_tag = std::hash<std::thread::id>{}(std::this_thread::get_id()) & 0xffffff;
    const fs::path temp =
        dir / fmt::format("{}{}-{}-{:x}-{:x}", kTempPrefix, path.filename().string(), ::getpid(),
                          thread_tag, temp_counter_.fetch_add(1));
    Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (fd.get() < 0) fail("store: cannot create {}: {}", temp.string(), errno_text());
    try {
        write_all(fd.get(), bytes, temp);
        if (::fsync(fd.get()) != 0) fail("store: cannot sync {}: {}", temp.string(), errno_text());
        if (::close(fd.release()) != 0)
            fail("store: cannot close {}: {}", temp.string(), errno_text());
        if (::rename(temp.c_str(), path.c_str()) != 0)
            fail("store: cannot rename {} to {}: {}", temp.string(), path.string(), errno_text());
    } catch (...) {
        ::unlink(temp.c_str());
        throw;
    }
    fsync_dir(dir);
}

std::vector<uint8_t> FilesystemBackend::get(std::string_view key) const {
    auto reader = open(key);
    if (!reader) fail("store: object {} not found in {}", key, root_.string());
    std::vector<uint8_t> bytes(reader->size());
    const size_t n = reader->read_at(0, bytes);
    if (n != bytes.size())
        fail("store: object {} shrank while reading ({} of {} bytes)", key, n, bytes.size());
    return bytes;
}

std::unique_ptr<ObjectReader> FilesystemBackend::open(std::string_view key) const {
    const fs::path path = resolve(key);
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        if (errno == ENOENT || errno == ENOTDIR) return nullptr;
        fail("store: cannot open {}: {}", path.string(), errno_text());
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) fail("store: cannot stat {}: {}", path.string(), errno_text());
    if (!S_ISREG(st.st_mode)) return nullptr;
    return std::make_unique<FileReader>(fd.release(), static_cast<uint64_t>(st.st_size),
                                        std::string(key));
}

std::vector<std::string> FilesystemBackend::list(std::string_view prefix) const {
    std::vector<std::string> keys;
    for (auto& info : list_info(prefix)) keys.push_back(std::move(info.key));
    return keys;
}

std::vector<ObjectInfo> FilesystemBackend::list_info(std::string_view prefix) const {
    std::vector<ObjectInfo> objects;
    const fs::path dir = prefix.empty() ? root_ : resolve(prefix);
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return objects;
    for (auto it = fs::recursive_directory_iterator(dir, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (!name.empty() && name.front() == '.') {  // temporary files and hidden entries
            if (it->is_directory()) it.disable_recursion_pending();
            continue;
        }
        struct stat st;
        if (::stat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
        const auto since_epoch =
            std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec);
        objects.push_back(
            {it->path().lexically_relative(root_).string(), static_cast<uint64_t>(st.st_size),
             std::chrono::system_clock::time_point(
                 std::chrono::duration_cast<std::chrono::system_clock::duration>(since_epoch))});
    }
    std::sort(objects.begin(), objects.end(),
              [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
    return objects;
}

std::vector<std::string> FilesystemBackend::list_children(std::string_view prefix) const {
    std::vector<std::string> names;
    const fs::path dir = prefix.empty() ? root_ : resolve(prefix);
    std::error_code ec;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
        std::string name = it->path().filename().string();
        if (!name.empty() && name.front() != '.') names.push_back(std::move(name));
    }
    std::sort(names.begin(), names.end());
    return names;
}

void FilesystemBackend::remove(std::string_view key) {
    const fs::path path = resolve(key);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        fail("store: cannot remove {}: {}", path.string(), errno_text());
    // Prune directories the removal left empty, so a removed context leaves no trace.
    for (fs::path dir = path.parent_path(); dir != root_ && is_inside(dir, root_);
         dir = dir.parent_path())
        if (::rmdir(dir.c_str()) != 0) break;
}

std::string FilesystemBackend::describe() const {
    return root_.string();
}

bool FilesystemBackend::is_temp_name(std::string_view file_name) {
    return file_name.substr(0, kTempPrefix.size()) == kTempPrefix;
}

size_t FilesystemBackend::remove_stale_temp_files(std::chrono::seconds min_age) {
    size_t removed = 0;
    const auto now = fs::file_time_type::clock::now();
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root_, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (!it->is_regular_file() || !is_temp_name(it->path().filename().string())) continue;
        std::error_code time_ec;
        const auto written = fs::last_write_time(it->path(), time_ec);
        if (time_ec || now - written < min_age) continue;
        if (fs::remove(it->path(), time_ec)) ++removed;
    }
    return removed;
}

}  // namespace sparkv
