// From what the device knows to what the planner needs: a context's manifest (shapes, unit
// sizes per level, unit features) and the device profile (compute and decode costs) become a
// plan::CostInstance, at the CPU availability measured now.
#pragma once

#include <cstdint>

#include "plan/cost_instance.h"
#include "plan/cost_model.h"
#include "store/manifest.h"

namespace sparkv::runtime {

// `level`: index into manifest.levels that policies stream at by default. The instance's levels
// are the manifest's, in its order.
plan::CostInstance build_costs(const Manifest& manifest, const plan::DeviceProfile& profile,
                               double availability, int level, double request_latency_s,
                               int64_t question_tokens);

}  // namespace sparkv::runtime
