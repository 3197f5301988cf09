// `sparkv profile`: measures this device's costs and fits the cost model (plan/cost_model.h).
//
// Compute samples: one full layer of a chunk of n tokens (log-uniform in [16, chunk], half of
// them exactly a chunk) at a random position of a cache filled with random KV, at three levels of
// CPU availability induced by a background hog process (none, half duty, full duty on one
// core), availability measured as the cost model will measure it at run time (cpu_monitor.h).
// Also: the last layer's K/V projection per token, the LM head + sampling, the decode time per
// byte of every codec level on one core, and how much a decoder running beside the compute lane
// slows it down. A quick profile (the default on first use) takes ~600 samples; `--full` ~6,000,
// the published estimator's training-set size.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "engine/model.h"
#include "plan/cost_model.h"

namespace sparkv::runtime {

struct ProfileOptions {
    int threads = 0;    // compute lane threads (0: all cores)
    int samples = 600;  // full-layer compute samples
    int32_t chunk_tokens = 1024;
    int64_t max_span = 8192;  // positions sampled: [0, max_span)
    bool contention = true;   // also sample with a background CPU hog
    int pool_spin_us = 50;    // as the runtime runs the engine beside the stream lane
    int mlp_epochs = 300;
    uint64_t seed = 1;
    std::function<void(int done, int total, double seconds)> on_progress;
};

plan::DeviceProfile measure_device_profile(const Model& model, const ProfileOptions& options);

// Where the profile of (model, threads) lives in the cache.
std::string device_profile_path(const Model& model, int threads);

// Loads the cached profile, or measures a quick one (and caches it) when there is none or it
// belongs to other weights. on_progress is passed to the measurement.
plan::DeviceProfile load_or_measure_profile(
    const Model& model, int threads,
    const std::function<void(int done, int total, double seconds)>& on_progress = {});

}  // namespace sparkv::runtime
