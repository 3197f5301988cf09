#include "plan/policy.h"

#include <algorithm>
#include <array>

#include "common/error.h"
#include "plan/simulator.h"

namespace sparkv::plan {

namespace {
constexpr std::array kPolicies{Policy::local, Policy::stream, Policy::cake, Policy::sparkv,
                               Policy::oracle};
}  // namespace

std::string_view policy_name(Policy policy) {
    switch (policy) {
        case Policy::local:
            return "local";
        case Policy::stream:
            return "stream";
        case Policy::cake:
            return "cake";
        case Policy::sparkv:
            return "sparkv";
        case Policy::oracle:
            return "oracle";
    }
    return "?";
}

Policy policy_from_name(std::string_view name) {
    for (Policy p : kPolicies)
        if (policy_name(p) == name) return p;
    fail("unknown policy '{}' (choose local, stream, cake, sparkv or oracle)", name);
}

std::span<const Policy> all_policies() {
    return kPolicies;
}

std::vector<UnitId> stream_order(const ContextShape& shape, const Plan& plan, StreamOrder order) {
    std::vector<UnitId> out;
    for (int32_t i = 0; i < shape.n_layers; ++i) {
        const int32_t l = order == StreamOrder::up ? i : shape.n_layers - 1 - i;
        for (int32_t t = 0; t < shape.n_chunks(); ++t)
            if (plan.lane[shape.index({t, l})] == Lane::stream) out.push_back({t, l});
    }
    return out;
}

Plan plan_from_depths(const CostInstance& costs, const std::vector<int32_t>& k, StreamOrder order) {
    Plan p = Plan::from_prefixes(costs.shape, k, costs.default_level);
    p.stream_order = stream_order(costs.shape, p, order);
    return p;
}

Plan make_plan(Policy policy, const CostInstance& costs, double bandwidth,
               const PlannerSettings& settings, const LinkModel* realised) {
    costs.validate();
    if (!(bandwidth > 0)) fail("planner: the bandwidth estimate must be positive");
    Plan plan;
    switch (policy) {
        case Policy::local:
            plan = plan_local(costs);
            break;
        case Policy::stream:
            plan = plan_stream(costs, bandwidth, settings.stream_adapts_level);
            break;
        case Policy::cake:
            plan = plan_cake(costs);
            break;
        case Policy::sparkv:
            plan = plan_sparkv(costs, bandwidth, settings);
            break;
        case Policy::oracle:
            if (!realised) fail("planner: the oracle needs the realised link");
            plan = plan_oracle(costs, *realised, settings);
            break;
    }
    plan.policy = std::string(policy_name(policy));
    if (plan.predicted_ttft_s == 0 && policy != Policy::oracle) {
        const ConstantLink link(bandwidth);
        plan.predicted_ttft_s = simulate(costs, plan, link).ttft_s;
    }
    return plan;
}

}  // namespace sparkv::plan
