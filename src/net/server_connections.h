// Which TCP connection a request belongs to. httplib serves each accepted connection, all its
// keep-alive requests included, as one task on one worker thread, so a task queue that opens a
// registry entry around each task gives every connection its own state (its link pacer) for
// exactly its lifetime. Keying by remote address and port instead would leak entries and hand a
// reused port the previous connection's link.
#pragma once

#include <httplib.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "net/link_pacer.h"

namespace sparkv {

struct ServedConnection {
    uint64_t id = 0;
    std::unique_ptr<LinkPacer> pacer;  // null when the link is unpaced
};

class ConnectionRegistry {
  public:
    explicit ConnectionRegistry(LinkConfig link) : link_(std::move(link)) {}

    // Runs task as one connection registered for the calling thread.
    void serve(const std::function<void()>& task);
    // The calling thread's connection, or nullptr outside a connection task.
    ServedConnection* current();

    size_t open_connections() const;
    uint64_t total_connections() const { return next_id_.load(); }

  private:
    LinkConfig link_;
    mutable std::mutex mutex_;
    std::unordered_map<std::thread::id, std::unique_ptr<ServedConnection>> by_thread_;
    std::atomic<uint64_t> next_id_{0};
};

// httplib's thread pool, with every task wrapped as a registered connection.
class ConnectionTaskQueue final : public httplib::TaskQueue {
  public:
    ConnectionTaskQueue(size_t threads, ConnectionRegistry& registry)
        : pool_(threads), registry_(registry) {}
    void enqueue(std::function<void()> fn) override {
        pool_.enqueue([this, task = std::move(fn)] { registry_.serve(task); });
    }
    void shutdown() override { pool_.shutdown(); }

  private:
    httplib::ThreadPool pool_;
    ConnectionRegistry& registry_;
};

}  // namespace sparkv
