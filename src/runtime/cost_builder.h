// From what the device knows to what the planner needs: a context's manifest (shapes, unit
// sizes per level, unit features) and the device profile (compute and decode costs) become a
// plan::CostInstance, at the CPU availability measured now.
#pragma once

#include <cstdint>

#include "plan/cost_instance.h"
#include "plan/cost_model.h"
#include "store/manifest.h"

namespace sparkv::runtime {

// A sparse context's unit: the key blocks its attention visited at ingest, in the cost model's
// unit (64 x 64 block pairs, once per layer), from the manifest; -1 (dense) when not recorded.
double model_active_blocks(const Manifest& manifest, const UnitInfo& unit);

// `level`: index into manifest.levels that policies stream at by default. The instance's levels
// are the manifest's, in its order.
plan::CostInstance build_costs(const Manifest& manifest, const plan::DeviceProfile& profile,
                               double availability, int level, double request_latency_s,
                               int64_t question_tokens);

}  // namespace sparkv::runtime
