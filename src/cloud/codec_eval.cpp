#include "cloud/codec_eval.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "cloud/saliency.h"
#include "codec/codec.h"
#include "common/error.h"
#include "common/timer.h"
#include "engine/engine.h"
#include "engine/generate.h"
#include "engine/prompt.h"

namespace sparkv {

namespace {

// log-softmax of each row, in place.
void log_softmax_rows(std::vector<float>& logits, int64_t n_vocab) {
    const int64_t rows = static_cast<int64_t>(logits.size()) / n_vocab;
    for (int64_t r = 0; r < rows; ++r) {
        float* row = logits.data() + r * n_vocab;
        const float max = *std::max_element(row, row + n_vocab);
        double sum = 0;
        for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(row[i] - max));
        const float log_z = max + static_cast<float>(std::log(sum));
        for (int64_t i = 0; i < n_vocab; ++i) row[i] -= log_z;
    }
}

// The context's KV, unit by unit, in the unit layout [kv_head][n_tokens][head_dim].
struct Unit {
    int64_t pos0 = 0;
    int64_t n = 0;
    codec::UnitKey key;
    codec::UnitShape shape;
    std::vector<uint16_t> k, v;
};

struct Scored {
    std::vector<float> log_probs;  // continuation_tokens x n_vocab
    std::vector<int32_t> greedy;
};

class Harness {
  public:
    Harness(const Model& model, const std::vector<int32_t>& tokens, const CodecEvalOptions& opt)
        : model_(model), opt_(opt), n_vocab_(model.config().n_vocab) {
        context_.assign(tokens.begin(), tokens.begin() + opt.context_tokens);
        continuation_.assign(tokens.begin() + opt.context_tokens,
                             tokens.begin() + opt.context_tokens + opt.continuation_tokens);
        question_ = question_tokens(model, opt.question, PromptFormat::raw);
        const int64_t capacity =
            opt.context_tokens +
            std::max<int64_t>(opt.continuation_tokens,
                              static_cast<int64_t>(question_.size()) + opt.greedy_tokens);
        engine_ = std::make_unique<Engine>(model, EngineOptions{capacity, opt.threads});
    }

    // Local prefill of the context (exact with the default dense settings); keeps every unit's
    // fp16 KV and adds up what the attention visited. Scoring afterwards is dense again.
    std::vector<Unit> prefill(const SparseAttentionOptions& sparse = {},
                              AttentionStats* total = nullptr) {
        const auto& c = model_.config();
        std::vector<Unit> units;
        engine_->set_sparse(sparse);
        for (int64_t pos = 0, t = 0; pos < opt_.context_tokens; pos += opt_.chunk_tokens, ++t) {
            const int64_t n = std::min<int64_t>(opt_.chunk_tokens, opt_.context_tokens - pos);
            HiddenState h = engine_->embed(
                std::span(context_).subspan(static_cast<size_t>(pos), static_cast<size_t>(n)), pos);
            while (h.layer < c.n_layer) {
                engine_->run_layer(h);
                if (total) {
                    total->active_blocks += engine_->last_attention_stats().active_blocks;
                    total->causal_blocks += engine_->last_attention_stats().causal_blocks;
                }
            }
            for (int l = 0; l < c.n_layer; ++l) {
                Unit u;
                u.pos0 = pos;
                u.n = n;
                u.key = {model_.fingerprint(), static_cast<uint32_t>(t), static_cast<uint32_t>(l)};
                u.shape = {static_cast<uint32_t>(n), static_cast<uint16_t>(c.n_kv_head),
                           static_cast<uint16_t>(c.head_dim)};
                u.k.resize(u.shape.elements());
                u.v.resize(u.shape.elements());
                engine_->export_kv(l, pos, n, u.k.data(), u.v.data());
                units.push_back(std::move(u));
            }
        }
        engine_->set_sparse({});
        return units;
    }

    // Per layer, the attention mass the context's last `queries` tokens pay each position (the
    // cache must hold the context's KV: right after prefill()).
    std::vector<std::vector<float>> saliency(int64_t queries) {
        return attention_mass(*engine_, context_, queries);
    }

    // Scores the continuation and answers the question on top of whatever KV the cache holds.
    Scored score() {
        Scored s;
        const int64_t at = opt_.context_tokens;
        engine_->cache().truncate(at);
        HiddenState h = engine_->embed(continuation_, at);
        while (h.layer < model_.config().n_layer) engine_->run_layer(h);
        s.log_probs = engine_->all_logits(h);
        log_softmax_rows(s.log_probs, n_vocab_);

        engine_->cache().truncate(at);
        std::vector<float> logits = engine_->prefill(question_, at);
        GenerateOptions go;
        go.n_predict = opt_.greedy_tokens;
        go.stop_at_end_of_generation = false;
        s.greedy = generate_from(*engine_, std::move(logits),
                                 at + static_cast<int64_t>(question_.size()), go)
                       .tokens;
        return s;
    }

    void import(const std::vector<Unit>& units) {
        for (const auto& u : units)
            engine_->import_kv(static_cast<int>(u.key.layer), u.pos0, u.n, u.k.data(), u.v.data());
    }

    // Log-probability the scored run gives each real next token (perplexity input). Row i predicts
    // continuation token i + 1; the first continuation token is predicted by the context's last
    // position, which is not part of the scored run, so n - 1 tokens are scored.
    double mean_nll(const Scored& s) const {
        double total = 0;
        const int64_t n = opt_.continuation_tokens - 1;
        for (int64_t i = 0; i < n; ++i)
            total -= s.log_probs[static_cast<size_t>(i * n_vocab_ +
                                                     continuation_[static_cast<size_t>(i + 1)])];
        return total / static_cast<double>(n);
    }

    void compare(const Scored& exact, const Scored& lossy, LevelEval& out) const {
        double kl_sum = 0, kl_max = 0;
        int64_t top1 = 0;
        const int64_t rows = opt_.continuation_tokens;
        for (int64_t r = 0; r < rows; ++r) {
            const float* p = exact.log_probs.data() + r * n_vocab_;
            const float* q = lossy.log_probs.data() + r * n_vocab_;
            double kl = 0;
            for (int64_t i = 0; i < n_vocab_; ++i)
                kl += std::exp(static_cast<double>(p[i])) * (p[i] - q[i]);
            kl = std::max(kl, 0.0);
            kl_sum += kl;
            kl_max = std::max(kl_max, kl);
            top1 +=
                (std::max_element(p, p + n_vocab_) - p) == (std::max_element(q, q + n_vocab_) - q);
        }
        out.kl_mean = kl_sum / static_cast<double>(rows);
        out.kl_max = kl_max;
        out.top1_agree = static_cast<double>(top1) / static_cast<double>(rows);
        size_t common = 0;
        while (common < exact.greedy.size() && common < lossy.greedy.size() &&
               exact.greedy[common] == lossy.greedy[common])
            ++common;
        out.greedy_agree_32 = static_cast<double>(common) / static_cast<double>(opt_.greedy_tokens);
    }

  private:
    const Model& model_;
    const CodecEvalOptions& opt_;
    int64_t n_vocab_;
    std::vector<int32_t> context_, continuation_, question_;
    std::unique_ptr<Engine> engine_;
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

CodecEvalResult evaluate_codec(const Model& model, const std::vector<int32_t>& text_tokens,
                               const CodecEvalOptions& opt) {
    if (opt.context_tokens < 1 || opt.continuation_tokens < 2)
        fail("codec-bench: need at least 1 context token and 2 continuation tokens");
    if (static_cast<int64_t>(text_tokens.size()) < opt.context_tokens + opt.continuation_tokens)
        fail("codec-bench: the text has {} tokens; {} context + {} continuation tokens are needed",
             text_tokens.size(), opt.context_tokens, opt.continuation_tokens);
    auto stage = [&](const std::string& s) {
        if (opt.on_stage) opt.on_stage(s);
    };

    Harness harness(model, text_tokens, opt);
    stage("exact prefill");
    const double t_exact = now_seconds();
    const std::vector<Unit> exact_units = harness.prefill();
    const double exact_prefill_seconds = now_seconds() - t_exact;
    std::vector<std::vector<float>> mass;  // per layer, when a level keeps salient tokens
    if (opt.profile && opt.profile->uses_saliency()) {
        stage("saliency");
        mass = harness.saliency(opt.profile->saliency_queries);
    }
    stage("exact scoring");
    const Scored exact = harness.score();

    CodecEvalResult result;
    result.context_tokens = opt.context_tokens;
    result.continuation_tokens = opt.continuation_tokens;
    result.exact_ppl = std::exp(harness.mean_nll(exact));
    result.exact_greedy = exact.greedy;
    result.exact_prefill_seconds = exact_prefill_seconds;

    uint64_t fp16_bytes = 0;
    for (const auto& u : exact_units) fp16_bytes += (u.k.size() + u.v.size()) * sizeof(uint16_t);

    codec::Decoder decoder;
    for (const auto& name : opt.levels) {
        const codec::Level level = codec::level_from_name(name);
        // The level's layer-wise bit profile needs the model's depth.
        codec::EncodeOptions options(level, static_cast<uint32_t>(model.config().n_layer));
        if (opt.profile) options.profile = &*opt.profile;
        const std::optional<uint64_t> profile_hash =
            opt.profile ? std::optional<uint64_t>(opt.profile->hash()) : std::nullopt;
        stage("level " + name);
        LevelEval ev;
        ev.name = name;
        ev.lossless = codec::level_info(level).lossless;
        // Salient rows of each unit, for a level that keeps them.
        std::vector<std::vector<uint32_t>> unit_rows(exact_units.size());
        if (!mass.empty() && codec::level_info(level).calibrated()) {
            const auto positions = salient_positions(*opt.profile, level, mass);
            if (const auto* table = opt.profile->find(level))
                options.salient_bits = table->salient_bits;
            for (size_t i = 0; i < exact_units.size(); ++i)
                unit_rows[i] = rows_in_chunk(positions[exact_units[i].key.layer],
                                             static_cast<uint32_t>(exact_units[i].pos0),
                                             exact_units[i].shape.n_tokens);
        }
        std::vector<std::vector<uint8_t>> encoded(exact_units.size());
        std::vector<double> enc_times, dec_times;
        std::vector<Unit> decoded = exact_units;
        for (int rep = 0; rep < std::max(1, opt.timing_repeats); ++rep) {
            const double t0 = now_seconds();
            for (size_t i = 0; i < exact_units.size(); ++i) {
                const auto& u = exact_units[i];
                options.salient_rows = unit_rows[i];
                encoded[i] =
                    codec::encode_unit(u.key, u.shape, codec::contiguous(u.k.data(), u.shape),
                                       codec::contiguous(u.v.data(), u.shape), options);
            }
            const double t1 = now_seconds();
            for (size_t i = 0; i < exact_units.size(); ++i) {
                auto& u = decoded[i];
                decoder.decode(encoded[i], u.key, u.shape, codec::contiguous(u.k.data(), u.shape),
                               codec::contiguous(u.v.data(), u.shape), level, profile_hash);
            }
            enc_times.push_back(t1 - t0);
            dec_times.push_back(now_seconds() - t1);
        }
        for (const auto& e : encoded) ev.bytes += e.size();
        ev.bytes_per_token =
            static_cast<double>(ev.bytes) / static_cast<double>(opt.context_tokens);
        ev.ratio_vs_fp16 = static_cast<double>(fp16_bytes) / static_cast<double>(ev.bytes);
        ev.encode_mb_s = static_cast<double>(fp16_bytes) / 1e6 / median(enc_times);
        ev.decode_mb_s = static_cast<double>(ev.bytes) / 1e6 / median(dec_times);
        ev.decode_output_mb_s = static_cast<double>(fp16_bytes) / 1e6 / median(dec_times);
        if (ev.lossless)
            for (size_t i = 0; i < decoded.size(); ++i)
                if (decoded[i].k != exact_units[i].k || decoded[i].v != exact_units[i].v)
                    fail(
                        "codec-bench: lossless level {} did not reproduce unit ({}, {}) bit for "
                        "bit",
                        name, decoded[i].key.chunk, decoded[i].key.layer);

        harness.import(decoded);
        const Scored lossy = harness.score();
        ev.ppl = std::exp(harness.mean_nll(lossy));
        ev.ppl_change_rel = ev.ppl / result.exact_ppl - 1.0;
        harness.compare(exact, lossy, ev);
        result.levels.push_back(ev);
    }

    for (float tau : opt.sparse_taus) {
        SparseEval ev;
        ev.options = opt.sparse;
        ev.options.tau = tau;
        kernels::validate(ev.options);
        stage(fmt::format("sparse prefill, tau {}", tau));
        AttentionStats total;
        const double t0 = now_seconds();
        const std::vector<Unit> units = harness.prefill(ev.options, &total);
        ev.prefill_seconds = now_seconds() - t0;
        ev.density = total.density();
        harness.import(units);
        const Scored sparse = harness.score();
        ev.fidelity.name = fmt::format("sparse-{}", tau);
        ev.fidelity.lossless = false;
        ev.fidelity.ppl = std::exp(harness.mean_nll(sparse));
        ev.fidelity.ppl_change_rel = ev.fidelity.ppl / result.exact_ppl - 1.0;
        harness.compare(exact, sparse, ev.fidelity);
        result.sparse.push_back(ev);
    }

    stage("noise floor (exact KV +- 1 ulp)");
    std::vector<Unit> nudged = exact_units;
    for (auto& u : nudged) {
        for (auto& x : u.k) x ^= 1;
        for (auto& x : u.v) x ^= 1;
    }
    harness.import(nudged);
    const Scored floor = harness.score();
    result.noise_floor.name = "fp16+-1ulp";
    result.noise_floor.ppl = std::exp(harness.mean_nll(floor));
    result.noise_floor.ppl_change_rel = result.noise_floor.ppl / result.exact_ppl - 1.0;
    harness.compare(exact, floor, result.noise_floor);
    return result;
}

}  // namespace sparkv
