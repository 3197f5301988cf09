// Codec calibration end to end on a small random-weight model: the profile it writes (per layer
// and per KV head), its budgets, and that its units encode and decode under its hash.
#include "cloud/codec_calibrate.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "codec/profile.h"
#include "common/fp16.h"
#include "engine/model.h"
#include "test_support.h"
#include "testkit/random_model.h"

namespace sparkv {
namespace {

struct Calibrated {
    codec::CodecProfile profile;
    int n_layers = 0, n_kv_heads = 0, head_dim = 0;
};

Calibrated calibrate(bool per_head, uint32_t salient_per_mille = 0) {
    testing::TempDir dir;
    RandomModelSpec spec;
    spec.n_layer = 2;
    spec.output_scale = 4.0f;  // peaked next-token distributions, so KL probes are not all ~0
    spec.tied_output = false;
    const std::string path = dir.file("model.gguf");
    write_random_model(spec, path);
    const auto model = Model::load(path);
    std::vector<int32_t> doc;
    for (int i = 0; i < 160; ++i) doc.push_back((i * 37 + 11) % 250);
    CalibrateOptions opt;
    opt.context_tokens = 128;
    opt.continuation_tokens = 16;
    opt.chunk_tokens = 64;
    opt.threads = 1;
    opt.per_head = per_head;
    opt.salient_per_mille = salient_per_mille;
    opt.saliency_queries = 16;
    opt.levels = {codec::Level::c4, codec::Level::c5};
    Calibrated c;
    c.profile = calibrate_codec(*model, model->fingerprint(), {doc}, opt);
    c.n_layers = spec.n_layer;
    c.n_kv_heads = spec.n_kv_head;
    c.head_dim = spec.head_dim;
    return c;
}

TEST(CodecCalibrate, PerHeadProfileListsEveryHeadAndKeepsTheBudget) {
    const Calibrated c = calibrate(true);
    const codec::CodecProfile& p = c.profile;
    ASSERT_EQ(p.levels.size(), 2u);
    for (const auto& t : p.levels) {
        EXPECT_GE(t.ratio_vs_fp16, codec::level_info(t.level).target_ratio * 0.999);
        ASSERT_EQ(t.head_bits.size(), static_cast<size_t>(c.n_layers));
        for (int l = 0; l < c.n_layers; ++l) {
            const auto& heads = t.head_bits[static_cast<size_t>(l)];
            ASSERT_EQ(heads.size(), static_cast<size_t>(c.n_kv_heads));
            codec::BitWidths widest{0, 0};
            for (const auto& b : heads) widest = {std::max(widest.k, b.k), std::max(widest.v, b.v)};
            EXPECT_EQ(widest, t.bits[static_cast<size_t>(l)]);  // the header's width
        }
    }
    // c5 spends fewer bits than c4 in total.
    int bits4 = 0, bits5 = 0;
    for (int l = 0; l < c.n_layers; ++l)
        for (int h = 0; h < c.n_kv_heads; ++h) {
            const auto b4 = p.levels[0].head_bits[l][h], b5 = p.levels[1].head_bits[l][h];
            bits4 += b4.k + b4.v;
            bits5 += b5.k + b5.v;
        }
    EXPECT_LT(bits5, bits4);
    EXPECT_EQ(codec::profile_from_json(codec::profile_to_json(p), "test").hash(), p.hash());

    // A unit encoded with the profile decodes under its hash and records the widest head.
    const codec::UnitShape shape{64, static_cast<uint16_t>(c.n_kv_heads),
                                 static_cast<uint16_t>(c.head_dim)};
    std::vector<uint16_t> k(shape.elements()), v(shape.elements());
    for (size_t i = 0; i < k.size(); ++i) {
        k[i] = fp32_to_fp16(static_cast<float>((i * 7919) % 200) / 50.0f - 2.0f);
        v[i] = fp32_to_fp16(static_cast<float>((i * 104729) % 300) / 100.0f - 1.5f);
    }
    codec::EncodeOptions o(codec::Level::c5);
    o.profile = &p;
    const codec::UnitKey key{p.model_fingerprint, 1, 1};
    const auto bytes = codec::encode_unit(key, shape, codec::contiguous(k.data(), shape),
                                          codec::contiguous(v.data(), shape), o);
    EXPECT_EQ(codec::read_header(bytes).bits, p.bits_for(codec::Level::c5, 1));
    std::vector<uint16_t> k2(k.size()), v2(v.size());
    codec::Decoder d;
    d.decode(bytes, key, shape, codec::contiguous(k2.data(), shape),
             codec::contiguous(v2.data(), shape), codec::Level::c5, p.hash());
}

TEST(CodecCalibrate, PerLayerProfileHasNoHeadTable) {
    const Calibrated c = calibrate(false);
    for (const auto& t : c.profile.levels) {
        EXPECT_TRUE(t.head_bits.empty());
        EXPECT_EQ(t.bits.size(), static_cast<size_t>(c.n_layers));
        EXPECT_GE(t.ratio_vs_fp16, codec::level_info(t.level).target_ratio * 0.999);
    }
}

TEST(CodecCalibrate, SalientTokensAreMeasuredAndPaidForInsideTheBudget) {
    const Calibrated plain = calibrate(false), salient = calibrate(false, 100);
    EXPECT_TRUE(salient.profile.uses_saliency());
    EXPECT_EQ(salient.profile.saliency_queries, 16u);
    EXPECT_NE(salient.profile.hash(), plain.profile.hash());
    for (size_t i = 0; i < salient.profile.levels.size(); ++i) {
        const auto& t = salient.profile.levels[i];
        EXPECT_EQ(t.salient_per_mille, 100u);
        EXPECT_GE(t.ratio_vs_fp16, codec::level_info(t.level).target_ratio * 0.999);
        // 10 % of the tokens at 8 bits leave fewer bits for the rest.
        int bits_plain = 0, bits_salient = 0;
        for (int l = 0; l < plain.n_layers; ++l) {
            const auto a = plain.profile.levels[i].bits[l], b = t.bits[l];
            bits_plain += a.k + a.v;
            bits_salient += b.k + b.v;
        }
        EXPECT_LT(bits_salient, bits_plain) << codec::level_name(t.level);
    }
    EXPECT_EQ(codec::profile_from_json(codec::profile_to_json(salient.profile), "t").hash(),
              salient.profile.hash());
}

}  // namespace
}  // namespace sparkv
