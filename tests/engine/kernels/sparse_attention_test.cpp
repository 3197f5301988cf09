// Block-sparse attention: the mask's guarantees, every ISA's kernel against the plain masked
// reference, tau = 1 against dense attention, and the settings' validation.
#include "engine/kernels/sparse_attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "common/error.h"
#include "common/fp16.h"
#include "engine/kernels/attention_driver.h"
#include "kernel_test_util.h"

namespace sparkv::kernels {
namespace {

// Queries and keys with structure, like a real model's: every block of `block` positions shares
// a random direction per head (plus noise), so blocks are self-similar and block scores differ.
struct Inputs {
    AttentionShape shape;
    int64_t ld = 0;
    std::vector<int32_t> pos;
    std::vector<float> q;
    std::vector<uint16_t> k, v;
};

Inputs make_inputs(int n_head, int n_kv_head, int head_dim, int64_t capacity, int64_t pos0,
                   int64_t n_q, int block, uint32_t seed, float noise = 0.3f) {
    Inputs in;
    in.shape = {n_head, n_kv_head, head_dim, capacity, 1.0f / std::sqrt(float(head_dim))};
    in.ld = int64_t(n_head) * head_dim + 4;
    in.pos.resize(static_cast<size_t>(n_q));
    std::iota(in.pos.begin(), in.pos.end(), static_cast<int32_t>(pos0));
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const int64_t n_blocks = (capacity + block - 1) / block;
    auto directions = [&](int heads) {
        std::vector<float> d(static_cast<size_t>(heads * n_blocks * head_dim));
        for (auto& x : d) x = 1.5f * normal(rng);
        return d;
    };
    const auto qdir = directions(n_head), kdir = directions(n_kv_head);
    in.q.assign(static_cast<size_t>(n_q * in.ld), 0.0f);
    for (int64_t i = 0; i < n_q; ++i)
        for (int h = 0; h < n_head; ++h)
            for (int d = 0; d < head_dim; ++d)
                in.q[static_cast<size_t>(i * in.ld + h * head_dim + d)] =
                    qdir[static_cast<size_t>((h * n_blocks + (pos0 + i) / block) * head_dim + d)] +
                    noise * normal(rng);
    const size_t n_kv = static_cast<size_t>(n_kv_head * capacity * head_dim);
    in.k.resize(n_kv);
    in.v.resize(n_kv);
    for (int g = 0; g < n_kv_head; ++g)
        for (int64_t j = 0; j < capacity; ++j)
            for (int d = 0; d < head_dim; ++d) {
                const size_t at = static_cast<size_t>((g * capacity + j) * head_dim + d);
                in.k[at] = fp32_to_fp16(
                    kdir[static_cast<size_t>((g * n_blocks + j / block) * head_dim + d)] +
                    noise * normal(rng));
                in.v[at] = fp32_to_fp16(normal(rng));
            }
    return in;
}

SparseMask mask_for(const Inputs& in, const SparseAttentionOptions& o, int threads = 2) {
    ThreadPool pool(threads);
    return build_sparse_mask(in.shape, in.q.data(), in.ld, static_cast<int64_t>(in.pos.size()),
                             in.pos.data(), in.k.data(), o, pool);
}

std::vector<int32_t> row_of(const SparseMask& m, int64_t r) {
    return {m.keys.begin() + m.offsets[static_cast<size_t>(r)],
            m.keys.begin() + m.offsets[static_cast<size_t>(r) + 1]};
}

// ---- settings ----

TEST(SparseOptions, DefaultsAreDenseAndValid) {
    const SparseAttentionOptions o;
    EXPECT_FALSE(o.enabled());
    EXPECT_NO_THROW(validate(o));
    for (int block : {16, 32, 64}) EXPECT_NO_THROW(validate({.tau = 0.5f, .block = block}));
}

TEST(SparseOptions, BadSettingsAreClearErrors) {
    auto message = [](SparseAttentionOptions o) {
        try {
            validate(o);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    for (float tau : {0.0f, -0.5f, 1.01f, std::nanf("")})
        EXPECT_NE(message({.tau = tau}).find("outside (0, 1]"), std::string::npos) << tau;
    for (int block : {0, 8, 48, 128, -64})
        EXPECT_NE(message({.block = block}).find("does not divide the kernel's 64-token tile"),
                  std::string::npos)
            << block;
    EXPECT_NE(message({.min_similarity = 1.5f}).find("min_similarity"), std::string::npos);
    EXPECT_NE(message({.sink_blocks = -1}).find("cannot be negative"), std::string::npos);
    EXPECT_NE(message({.local_blocks = -2}).find("cannot be negative"), std::string::npos);
}

// ---- the mask ----

TEST(SparseMask, NeverDropsDiagonalSinkOrLocalBlocks) {
    for (int block : {16, 32, 64}) {
        for (float tau : {0.05f, 0.5f, 0.9f}) {
            for (int local : {0, 1, 3}) {
                const Inputs in = make_inputs(9, 3, 64, 1600, 512, 1024, block, 7 + block);
                const SparseAttentionOptions o{.tau = tau,
                                               .block = block,
                                               .min_similarity = -1.0f,
                                               .sink_blocks = 2,
                                               .local_blocks = local};
                const SparseMask m = mask_for(in, o);
                EXPECT_EQ(m.first_block, 512 / block);
                EXPECT_EQ(m.n_query_blocks, 1024 / block);
                for (int64_t r = 0; r < m.rows(); ++r) {
                    const int64_t qb = m.first_block + r % m.n_query_blocks;
                    const auto row = row_of(m, r);
                    ASSERT_TRUE(std::is_sorted(row.begin(), row.end()));
                    ASSERT_EQ(std::adjacent_find(row.begin(), row.end()), row.end());
                    ASSERT_LE(row.back(), qb);
                    auto has = [&](int64_t b) {
                        return std::binary_search(row.begin(), row.end(), int32_t(b));
                    };
                    EXPECT_TRUE(has(0) && has(1)) << "sink, row " << r;
                    for (int64_t b = std::max<int64_t>(0, qb - local); b <= qb; ++b)
                        EXPECT_TRUE(has(b)) << "diagonal/local block " << b << ", row " << r;
                }
            }
        }
    }
}

TEST(SparseMask, DropsBlocksBelowTauAndKeepsMoreAsTauGrows) {
    const Inputs in = make_inputs(9, 3, 64, 2048, 1024, 1024, 64, 3);
    int64_t previous = 0;
    for (float tau : {0.1f, 0.5f, 0.9f, 0.99f, 1.0f}) {
        const SparseMask m = mask_for(in, {.tau = tau, .min_similarity = -1.0f});
        const AttentionStats st = m.stats();
        EXPECT_EQ(st.causal_blocks, 3 * (17 + 32) * 16 / 2);  // blocks 16..31, each qb + 1 keys
        EXPECT_EQ(st.active_blocks, static_cast<int64_t>(m.keys.size()));
        EXPECT_GE(st.active_blocks, previous) << tau;
        if (tau <= 0.5f) {
            EXPECT_LT(st.active_blocks, st.causal_blocks / 2) << tau;
        }
        if (tau == 1.0f) {
            EXPECT_EQ(st.active_blocks, st.causal_blocks);
            EXPECT_EQ(st.dense_query_blocks, st.query_blocks);
        }
        previous = st.active_blocks;
    }
}

TEST(SparseMask, DissimilarQueryBlocksAndPartialBlocksFallBackToDense) {
    // Pure noise: no block is self-similar; the default threshold keeps every row dense.
    const Inputs noise = make_inputs(9, 3, 64, 1200, 256, 512, 64, 5, 50.0f);
    const SparseMask m = mask_for(noise, {.tau = 0.2f});
    EXPECT_EQ(m.stats().dense_query_blocks, m.rows());
    EXPECT_EQ(m.stats().active_blocks, m.stats().causal_blocks);

    // Queries at 100..899 with blocks of 64: blocks 1 and 14 are partial, hence dense.
    const Inputs in = make_inputs(9, 3, 64, 1200, 100, 800, 64, 6);
    const SparseMask p = mask_for(in, {.tau = 0.2f, .min_similarity = -1.0f});
    ASSERT_EQ(p.first_block, 1);
    ASSERT_EQ(p.n_query_blocks, 14);
    for (int64_t r = 0; r < p.rows(); ++r) {
        const int64_t qb = p.first_block + r % p.n_query_blocks;
        const bool partial = qb == 1 || qb == 14;
        EXPECT_EQ(p.dense[static_cast<size_t>(r)] != 0, partial) << "block " << qb;
        if (partial) {
            EXPECT_EQ(static_cast<int64_t>(row_of(p, r).size()), qb + 1);
        }
    }
}

TEST(SparseMask, DoesNotDependOnTheThreadCount) {
    const Inputs in = make_inputs(9, 3, 64, 3072, 2048, 1024, 32, 8);
    const SparseAttentionOptions o{.tau = 0.7f, .block = 32, .min_similarity = -1.0f};
    const SparseMask a = mask_for(in, o, 1), b = mask_for(in, o, 3);
    EXPECT_EQ(a.keys, b.keys);
    EXPECT_EQ(a.offsets, b.offsets);
}

// ---- the kernels ----

class SparseAttentionIsa : public ::testing::TestWithParam<Isa> {
  protected:
    const detail::KernelTable& table() const { return detail::kernel_table(GetParam()); }

    // The ISA's kernel with this mask against the double-precision masked reference.
    void check(const Inputs& in, const SparseMask& mask, int threads) {
        const int64_t n_q = static_cast<int64_t>(in.pos.size());
        std::vector<float> got(static_cast<size_t>(n_q * in.ld), 7.0f), want = got;
        ThreadPool pool(threads);
        detail::attention_masked_with(table(), in.shape, in.q.data(), in.ld, n_q, in.pos.data(),
                                      in.k.data(), in.v.data(), got.data(), in.ld, mask, pool);
        ref::masked_attention(in.shape, in.q.data(), in.ld, n_q, in.pos.data(), in.k.data(),
                              in.v.data(), want.data(), in.ld, mask);
        int failures = 0;
        for (size_t i = 0; i < got.size(); ++i)
            if (!(std::fabs(got[i] - want[i]) <= 2e-5f) && failures++ < 5)
                ADD_FAILURE() << "element " << i << " (query " << i / in.ld << "): " << got[i]
                              << " vs reference " << want[i];
    }
};

TEST_P(SparseAttentionIsa, MatchesMaskedReferenceAtEveryBlockSize) {
    for (int block : {16, 32, 64}) {
        const Inputs in = make_inputs(9, 3, 64, 1024, 768, 256, block, 20 + block);
        for (float tau : {0.3f, 0.8f}) {
            const SparseMask m = mask_for(in, {.tau = tau, .block = block, .min_similarity = -1});
            ASSERT_LT(m.stats().active_blocks, m.stats().causal_blocks);
            check(in, m, 2);
        }
    }
}

TEST_P(SparseAttentionIsa, MatchesMaskedReferenceWithPartialBlocksAndOtherHeads) {
    const Inputs unaligned = make_inputs(9, 3, 64, 1000, 470, 300, 32, 30);
    check(unaligned, mask_for(unaligned, {.tau = 0.5f, .block = 32, .min_similarity = -1}), 1);
    const Inputs wide = make_inputs(8, 2, 128, 700, 256, 320, 64, 31);
    check(wide, mask_for(wide, {.tau = 0.6f, .min_similarity = -1}), 2);
    const Inputs narrow = make_inputs(4, 4, 32, 600, 128, 384, 16, 32);
    check(narrow, mask_for(narrow, {.tau = 0.6f, .block = 16, .min_similarity = -1}), 2);
    const Inputs odd = make_inputs(6, 3, 20, 500, 192, 256, 64, 33);  // not a multiple of 8
    check(odd, mask_for(odd, {.tau = 0.6f, .min_similarity = -1}), 2);
}

TEST_P(SparseAttentionIsa, MatchesMaskedReferenceOnArbitraryMasks) {
    // Any sorted subset of the causal blocks that keeps the diagonal, not only what the
    // selection produces; runs of adjacent blocks and gaps of every length.
    const Inputs in = make_inputs(9, 3, 64, 1000, 640, 320, 32, 40);
    SparseMask m = mask_for(in, {.tau = 1.0f, .block = 32});
    std::mt19937 rng(41);
    std::vector<int32_t> keys;
    std::vector<int64_t> offsets = {0};
    for (int64_t r = 0; r < m.rows(); ++r) {
        const int64_t qb = m.first_block + r % m.n_query_blocks;
        for (int64_t b = 0; b <= qb; ++b)
            if (b == qb || rng() % 3 == 0) keys.push_back(static_cast<int32_t>(b));
        offsets.push_back(static_cast<int64_t>(keys.size()));
    }
    m.keys = keys;
    m.offsets = offsets;
    check(in, m, 2);
}

TEST_P(SparseAttentionIsa, DroppedBlocksAreNeverRead) {
    // Key blocks no row of a KV head keeps are overwritten with NaN: any load of them would
    // poison the output.
    Inputs in = make_inputs(9, 3, 64, 2048, 1792, 256, 64, 50);
    const SparseMask m = mask_for(in, {.tau = 0.2f, .min_similarity = -1});
    int64_t poisoned = 0;
    for (int g = 0; g < 3; ++g) {
        std::vector<uint8_t> used(32, 0);
        for (int64_t i = 0; i < m.n_query_blocks; ++i)
            for (int32_t b : row_of(m, g * m.n_query_blocks + i)) used[static_cast<size_t>(b)] = 1;
        for (int64_t b = 0; b < 32; ++b) {
            if (used[static_cast<size_t>(b)]) continue;
            ++poisoned;
            const auto first = static_cast<size_t>((g * 2048 + b * 64) * 64);
            std::fill(in.k.begin() + first, in.k.begin() + first + 64 * 64, uint16_t{0x7e00});
            std::fill(in.v.begin() + first, in.v.begin() + first + 64 * 64, uint16_t{0x7e00});
        }
    }
    ASSERT_GT(poisoned, 0);
    check(in, m, 2);
}

TEST_P(SparseAttentionIsa, TauOneEqualsDenseAttention) {
    const Inputs in = make_inputs(9, 3, 64, 1100, 512, 512, 64, 60);
    const SparseMask m = mask_for(in, {.tau = 1.0f, .min_similarity = -1});
    const int64_t n_q = 512;
    std::vector<float> sparse(static_cast<size_t>(n_q * in.ld), 0.0f), dense = sparse;
    ThreadPool pool(2);
    detail::attention_masked_with(table(), in.shape, in.q.data(), in.ld, n_q, in.pos.data(),
                                  in.k.data(), in.v.data(), sparse.data(), in.ld, m, pool);
    detail::attention_with(table(), in.shape, in.q.data(), in.ld, n_q, in.pos.data(), in.k.data(),
                           in.v.data(), dense.data(), in.ld, pool);
    for (size_t i = 0; i < sparse.size(); ++i)
        ASSERT_NEAR(sparse[i], dense[i], 1e-6f) << "element " << i;
}

TEST_P(SparseAttentionIsa, RejectsAMaskBuiltForOtherQueries) {
    const Inputs in = make_inputs(9, 3, 64, 800, 128, 256, 64, 70);
    const SparseMask m = mask_for(in, {.tau = 0.5f, .min_similarity = -1});
    const Inputs other = make_inputs(9, 3, 64, 800, 192, 256, 64, 71);
    std::vector<float> out(static_cast<size_t>(256 * in.ld));
    ThreadPool pool(1);
    EXPECT_THROW(detail::attention_masked_with(table(), other.shape, other.q.data(), other.ld, 256,
                                               other.pos.data(), other.k.data(), other.v.data(),
                                               out.data(), other.ld, m, pool),
                 Error);
}

INSTANTIATE_TEST_SUITE_P(Isa, SparseAttentionIsa, ::testing::ValuesIn(testing::runnable_isas()),
                         testing::isa_param_name);

// ---- the public entry point ----

TEST(SparseAttentionEntry, DecodeAndShortRunsAreDenseAndCounted) {
    const Inputs in = make_inputs(9, 3, 64, 1200, 1000, 40, 64, 80);
    ThreadPool pool(2);
    const SparseAttentionOptions o{.tau = 0.3f, .min_similarity = -1};
    std::vector<float> got(static_cast<size_t>(40 * in.ld)), want = got;
    // 40 queries at 1000..1039 hold no full block of 64: dense, counted as blocks 15 and 16.
    const AttentionStats st =
        sparse_attention(in.shape, in.q.data(), in.ld, 40, in.pos.data(), in.k.data(), in.v.data(),
                         got.data(), in.ld, o, pool);
    attention(in.shape, in.q.data(), in.ld, 40, in.pos.data(), in.k.data(), in.v.data(),
              want.data(), in.ld, pool);
    EXPECT_EQ(got, want);
    EXPECT_EQ(st.causal_blocks, 3 * (16 + 17));
    EXPECT_EQ(st.active_blocks, st.causal_blocks);
    EXPECT_EQ(st.query_blocks, 6);
    EXPECT_GE(st.seconds, 0.0);

    const int32_t one = 1100;  // decode
    const AttentionStats d = sparse_attention(in.shape, in.q.data(), in.ld, 1, &one, in.k.data(),
                                              in.v.data(), got.data(), in.ld, o, pool);
    EXPECT_EQ(d.active_blocks, 3 * 18);
}

TEST(SparseAttentionEntry, SparseRunVisitsFewerBlocksThanDense) {
    const Inputs in = make_inputs(9, 3, 64, 2048, 1024, 1024, 64, 90);
    ThreadPool pool(2);
    std::vector<float> out(static_cast<size_t>(1024 * in.ld));
    const AttentionStats st =
        sparse_attention(in.shape, in.q.data(), in.ld, 1024, in.pos.data(), in.k.data(),
                         in.v.data(), out.data(), in.ld, {.tau = 0.5f, .min_similarity = -1}, pool);
    const AttentionStats dense = dense_attention_stats(in.pos.data(), 1024, 3, 64);
    EXPECT_EQ(st.causal_blocks, dense.causal_blocks);
    EXPECT_LT(st.active_blocks, dense.active_blocks);
    EXPECT_LT(st.density(), 1.0);
}

}  // namespace
}  // namespace sparkv::kernels
