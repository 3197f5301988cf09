// The calibration's bit allocator (dynamic programming over a multiple-choice knapsack) against
// brute force on small random instances.
#include <gtest/gtest.h>

#include <random>

#include "cloud/codec_calibrate.h"
#include "common/error.h"

namespace sparkv {
namespace {

double total(const std::vector<AllocItem>& items, const std::vector<int>& picks, bool cost) {
    double s = 0;
    for (size_t i = 0; i < items.size(); ++i)
        s += cost ? items[i].cost[picks[i]] : items[i].distortion[picks[i]];
    return s;
}

// Exhaustive search over every combination.
double brute_force(const std::vector<AllocItem>& items, double budget) {
    double best = 1e300;
    std::vector<int> picks(items.size(), 0);
    while (true) {
        if (total(items, picks, true) <= budget) best = std::min(best, total(items, picks, false));
        size_t i = 0;
        while (i < items.size() && ++picks[i] == static_cast<int>(items[i].cost.size()))
            picks[i++] = 0;
        if (i == items.size()) return best;
    }
}

TEST(AllocateBits, MatchesBruteForceAndRespectsTheBudget) {
    std::mt19937 rng(5);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (int trial = 0; trial < 60; ++trial) {
        // Like the codec: more bits cost more bytes and distort less (4^-b), scaled per item.
        std::vector<AllocItem> items(2 + rng() % 4);
        for (auto& it : items) {
            const double size = 50 + 100 * u(rng), weight = u(rng);
            for (int b = 2; b <= 6; ++b) {
                it.cost.push_back(size * b * (0.9 + 0.2 * u(rng)));
                it.distortion.push_back(weight * std::pow(4.0, -b));
            }
        }
        double lo = 0, hi = 0;
        for (const auto& it : items) {
            lo += *std::min_element(it.cost.begin(), it.cost.end());
            hi += *std::max_element(it.cost.begin(), it.cost.end());
        }
        const double budget = lo + (hi - lo) * u(rng);
        const std::vector<int> picks = allocate_bits(items, budget, 1 << 16);
        EXPECT_LE(total(items, picks, true), budget + 1e-9);
        // Costs are rounded up to (budget - floor) / resolution: at least as good as the optimum
        // of a budget short by one quantum per item, and never better than the true optimum.
        const double quantum = (budget - lo) / (1 << 16);
        const double shorter = budget - static_cast<double>(items.size()) * quantum;
        EXPECT_LE(total(items, picks, false), brute_force(items, shorter) + 1e-15);
        EXPECT_GE(total(items, picks, false), brute_force(items, budget) - 1e-15);
    }
}

TEST(AllocateBits, EdgeCases) {
    std::vector<AllocItem> items = {{{10, 20, 30}, {3, 2, 1}}, {{5, 6}, {9, 1}}};
    EXPECT_EQ(allocate_bits(items, 15), (std::vector<int>{0, 0}));  // only the floor fits
    EXPECT_EQ(allocate_bits(items, 1000), (std::vector<int>{2, 1}));
    EXPECT_EQ(allocate_bits(items, 16), (std::vector<int>{0, 1}));  // the cheaper big gain
    EXPECT_THROW(allocate_bits(items, 14), Error);
    EXPECT_TRUE(allocate_bits({}, 0).empty());
    EXPECT_THROW(allocate_bits({{{1, 2}, {1}}}, 10), Error);
}

}  // namespace
}  // namespace sparkv
