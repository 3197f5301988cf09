#include "net/server_connections.h"

namespace sparkv {

void ConnectionRegistry::serve(const std::function<void()>& task) {
    auto connection = std::make_unique<ServedConnection>();
    connection->id = next_id_.fetch_add(1) + 1;
    if (link_.paced())
        connection->pacer = std::make_unique<LinkPacer>(link_, LinkPacer::Clock::now());
    const auto thread = std::this_thread::get_id();
    {
        std::lock_guard lock(mutex_);
        by_thread_[thread] = std::move(connection);
    }
    struct Unregister {
        ConnectionRegistry& registry;
        std::thread::id thread;
        ~Unregister() {
            std::lock_guard lock(registry.mutex_);
            registry.by_thread_.erase(thread);
        }
    } unregister{*this, thread};
    task();
}

ServedConnection* ConnectionRegistry::current() {
    std::lock_guard lock(mutex_);
    auto it = by_thread_.find(std::this_thread::get_id());
    return it == by_thread_.end() ? nullptr : it->second.get();
}

size_t ConnectionRegistry::open_connections() const {
    std::lock_guard lock(mutex_);
    return by_thread_.size();
}

}  // namespace sparkv
