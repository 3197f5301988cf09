#include "cloud/codec_calibrate.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "cloud/saliency.h"
#include "common/error.h"
#include "common/fp16.h"
#include "engine/engine.h"

namespace sparkv {

namespace {

constexpr int kMinBits = 2, kMaxBits = 8;
constexpr int kChoices = kMaxBits - kMinBits + 1;

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

struct Unit {
    int64_t pos0 = 0, n = 0;
    codec::UnitKey key;
    codec::UnitShape shape;
    std::vector<uint16_t> k, v;
};

// What one calibration document measured, per slot: a (layer, head group, tensor) triple,
// slot = (layer * groups + group) * 2 + X with X = 0 for K and 1 for V.
struct DocMeasure {
    std::vector<std::array<double, kChoices>> kl_probe;    // [slot][b], probed b only
    std::vector<std::array<double, kChoices>> sse, bytes;  // [slot][b]
    std::vector<double> base_bytes;                        // [layer]: both tensors at 8 bits
    double fp16_bytes = 0;
};

// Squared error of elements [from, to) of two fp16 tensors.
double sse(const std::vector<uint16_t>& a, const std::vector<uint16_t>& b, size_t from, size_t to) {
    double s = 0;
    for (size_t i = from; i < to; ++i) {
        const double d = static_cast<double>(fp16_to_fp32(a[i])) - fp16_to_fp32(b[i]);
        s += d * d;
    }
    return s;
}

class Calibrator {
  public:
    Calibrator(const Model& model, const std::vector<int32_t>& tokens, const CalibrateOptions& opt)
        : model_(model), opt_(opt), n_vocab_(model.config().n_vocab) {
        if (static_cast<int64_t>(tokens.size()) < opt.context_tokens + opt.continuation_tokens)
            fail("codec-calibrate: a document has {} tokens; {} context + {} continuation needed",
                 tokens.size(), opt.context_tokens, opt.continuation_tokens);
        context_.assign(tokens.begin(), tokens.begin() + opt.context_tokens);
        continuation_.assign(tokens.begin() + opt.context_tokens,
                             tokens.begin() + opt.context_tokens + opt.continuation_tokens);
        engine_ = std::make_unique<Engine>(
            model, EngineOptions{opt.context_tokens + opt.continuation_tokens, opt.threads});
        // Probes encode with the measuring model's fingerprint and the profile's sink tokens.
        probe_profile_.model_fingerprint = model.fingerprint();
        probe_profile_.n_layers = static_cast<uint32_t>(model.config().n_layer);
        probe_profile_.sink_tokens = opt.sink_tokens;
        codec::CodecProfile::LevelTable table;
        table.level = codec::Level::c5;
        table.bits.assign(probe_profile_.n_layers, {8, 8});
        probe_profile_.levels.push_back(std::move(table));
        n_heads_ = static_cast<size_t>(model.config().n_kv_head);
        n_groups_ = opt.per_head ? n_heads_ : 1;
    }

    size_t groups() const { return n_groups_; }

    DocMeasure measure() {
        const auto& c = model_.config();
        prefill();
        // With salient tokens, every probe and size is measured in the format they give: the
        // context's salient rows stay at 8 bits, so a layer's sensitivity and bytes are those of
        // its other rows.
        if (opt_.salient_per_mille > 0) {
            probe_profile_.levels[0].salient_per_mille = opt_.salient_per_mille;
            probe_profile_.saliency_queries = opt_.saliency_queries;
            salient_ = salient_positions(probe_profile_, codec::Level::c5,
                                         attention_mass(*engine_, context_, opt_.saliency_queries));
        }
        const std::vector<float> exact = score();
        DocMeasure m;
        const size_t slots = static_cast<size_t>(c.n_layer) * n_groups_ * 2;
        m.kl_probe.assign(slots, {});
        m.sse.assign(slots, {});
        m.bytes.assign(slots, {});
        m.base_bytes.assign(c.n_layer, 0);
        for (const Unit& u : units_) m.fp16_bytes += 4.0 * static_cast<double>(u.k.size());
        const size_t heads_per_group = n_heads_ / n_groups_;
        for (int l = 0; l < c.n_layer; ++l) {
            // Sensitivity: only the heads of one group in one tensor at the probe width.
            for (size_t g = 0; g < n_groups_; ++g) {
                for (int x = 0; x < 2; ++x) {
                    for (int pb : opt_.probe_bits) {
                        std::vector<codec::BitWidths> heads(n_heads_, {8, 8});
                        for (size_t h = g * heads_per_group; h < (g + 1) * heads_per_group; ++h)
                            (x == 0 ? heads[h].k : heads[h].v) = static_cast<uint8_t>(pb);
                        for (const Unit& u : units_) {
                            if (static_cast<int>(u.key.layer) != l) continue;
                            Unit q = roundtrip(u, heads);
                            engine_->import_kv(l, u.pos0, u.n, x == 0 ? q.k.data() : u.k.data(),
                                               x == 0 ? u.v.data() : q.v.data());
                        }
                        m.kl_probe[slot(l, g, x)][pb - kMinBits] = mean_kl(exact, score());
                        for (const Unit& u : units_)
                            if (static_cast<int>(u.key.layer) == l)
                                engine_->import_kv(l, u.pos0, u.n, u.k.data(), u.v.data());
                    }
                }
            }
            // Size and squared error of every width, all heads of a tensor at once; a group's
            // share of the bytes is its share of the heads.
            for (int j = 0; j < kChoices; ++j) {
                const auto b = static_cast<uint8_t>(kMinBits + j);
                for (int x = 0; x < 2; ++x) {
                    const std::vector<codec::BitWidths> heads(
                        n_heads_, x == 0 ? codec::BitWidths{b, 8} : codec::BitWidths{8, b});
                    for (const Unit& u : units_) {
                        if (static_cast<int>(u.key.layer) != l) continue;
                        size_t size = 0;
                        Unit q = roundtrip(u, heads, &size);
                        const size_t per_head = u.k.size() / n_heads_;
                        for (size_t g = 0; g < n_groups_; ++g) {
                            const size_t from = g * heads_per_group * per_head;
                            const size_t to = from + heads_per_group * per_head;
                            m.sse[slot(l, g, x)][j] +=
                                x == 0 ? sse(u.k, q.k, from, to) : sse(u.v, q.v, from, to);
                            m.bytes[slot(l, g, x)][j] +=
                                static_cast<double>(size) / static_cast<double>(n_groups_);
                        }
                        if (b == kMaxBits && x == 0) m.base_bytes[l] += static_cast<double>(size);
                    }
                }
            }
        }
        return m;
    }

  private:
    void prefill() {
        const auto& c = model_.config();
        for (int64_t pos = 0, t = 0; pos < opt_.context_tokens; pos += opt_.chunk_tokens, ++t) {
            const int64_t n = std::min<int64_t>(opt_.chunk_tokens, opt_.context_tokens - pos);
            HiddenState h = engine_->embed(
                std::span(context_).subspan(static_cast<size_t>(pos), static_cast<size_t>(n)), pos);
            while (h.layer < c.n_layer) engine_->run_layer(h);
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
                units_.push_back(std::move(u));
            }
        }
    }

    std::vector<float> score() {
        engine_->cache().truncate(opt_.context_tokens);
        HiddenState h = engine_->embed(continuation_, opt_.context_tokens);
        while (h.layer < model_.config().n_layer) engine_->run_layer(h);
        std::vector<float> lp = engine_->all_logits(h);
        log_softmax_rows(lp, n_vocab_);
        return lp;
    }

    double mean_kl(const std::vector<float>& exact, const std::vector<float>& probe) const {
        double total = 0;
        const int64_t rows = static_cast<int64_t>(exact.size()) / n_vocab_;
        for (int64_t r = 0; r < rows; ++r) {
            const float* p = exact.data() + r * n_vocab_;
            const float* q = probe.data() + r * n_vocab_;
            double kl = 0;
            for (int64_t i = 0; i < n_vocab_; ++i)
                kl += std::exp(static_cast<double>(p[i])) * (p[i] - q[i]);
            total += std::max(kl, 0.0);
        }
        return total / static_cast<double>(rows);
    }

    size_t slot(int layer, size_t group, int x) const {
        return (static_cast<size_t>(layer) * n_groups_ + group) * 2 + static_cast<size_t>(x);
    }

    Unit roundtrip(const Unit& u, const std::vector<codec::BitWidths>& heads,
                   size_t* size = nullptr) {
        codec::EncodeOptions eo(codec::Level::c5);
        eo.profile = &probe_profile_;
        eo.head_bits.assign(u.key.layer + 1, {});
        eo.head_bits[u.key.layer] = heads;
        std::vector<uint32_t> rows;
        if (!salient_.empty()) {
            rows = rows_in_chunk(salient_[u.key.layer], static_cast<uint32_t>(u.pos0),
                                 u.shape.n_tokens);
            eo.salient_rows = rows;
        }
        Unit q = u;
        const size_t s = codec::roundtrip_unit(
            u.key, u.shape, codec::contiguous(u.k.data(), u.shape),
            codec::contiguous(u.v.data(), u.shape), eo, decoder_,
            codec::contiguous(q.k.data(), q.shape), codec::contiguous(q.v.data(), q.shape));
        if (size) *size = s;
        return q;
    }

    const Model& model_;
    const CalibrateOptions& opt_;
    int64_t n_vocab_;
    std::vector<int32_t> context_, continuation_;
    std::unique_ptr<Engine> engine_;
    std::vector<Unit> units_;
    codec::CodecProfile probe_profile_;
    std::vector<std::vector<uint32_t>> salient_;  // [layer]: salient context positions
    codec::Decoder decoder_;
    size_t n_heads_ = 1, n_groups_ = 1;
};

}  // namespace

std::vector<int> allocate_bits(const std::vector<AllocItem>& items, double budget, int resolution) {
    if (items.empty()) return {};
    // Shift every item's costs to start at zero; the cheapest choices form the floor.
    double floor = 0;
    std::vector<std::vector<double>> extra(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
        const auto& it = items[i];
        if (it.cost.empty() || it.cost.size() != it.distortion.size())
            fail("allocate_bits: item {} needs as many costs as distortions (and at least one)", i);
        const double lo = *std::min_element(it.cost.begin(), it.cost.end());
        floor += lo;
        for (double c : it.cost) extra[i].push_back(c - lo);
    }
    const double room = budget - floor;
    if (room < 0)
        fail("allocate_bits: budget {:.0f} is below the smallest possible size {:.0f}", budget,
             floor);
    const double quantum = room > 0 ? room / resolution : 1.0;
    const int cap = room > 0 ? resolution : 0;
    const double inf = std::numeric_limits<double>::infinity();
    // best[c] = least distortion of the items so far within c quanta; choice[i][c] to backtrack.
    std::vector<double> best(cap + 1, 0.0), next(cap + 1);
    std::vector<std::vector<int16_t>> choice(items.size(), std::vector<int16_t>(cap + 1, -1));
    for (size_t i = 0; i < items.size(); ++i) {
        std::fill(next.begin(), next.end(), inf);
        for (size_t j = 0; j < extra[i].size(); ++j) {
            const double q = std::ceil(extra[i][j] / quantum - 1e-9);
            if (q > cap) continue;
            const int w = static_cast<int>(q);
            for (int c = w; c <= cap; ++c) {
                const double d = best[c - w] + items[i].distortion[j];
                if (d < next[c]) {
                    next[c] = d;
                    choice[i][c] = static_cast<int16_t>(j);
                }
            }
        }
        best.swap(next);
    }
    std::vector<int> picks(items.size());
    int c = cap;
    for (size_t i = items.size(); i-- > 0;) {
        const int j = choice[i][c];
        if (j < 0) fail("allocate_bits: no allocation fits the budget");
        picks[i] = j;
        c -= static_cast<int>(std::ceil(extra[i][static_cast<size_t>(j)] / quantum - 1e-9));
    }
    return picks;
}

codec::CodecProfile calibrate_codec(const Model& measure_model, uint64_t fingerprint,
                                    const std::vector<std::vector<int32_t>>& docs,
                                    const CalibrateOptions& opt) {
    if (docs.empty()) fail("codec-calibrate: no calibration documents");
    if (opt.probe_bits.empty()) fail("codec-calibrate: no probe widths");
    for (int pb : opt.probe_bits)
        if (pb < kMinBits || pb >= kMaxBits)
            fail("codec-calibrate: probe width {} outside {}..{}", pb, kMinBits, kMaxBits - 1);
    if (opt.salient_per_mille >= 1000)
        fail("codec-calibrate: {} per mille salient tokens leaves nothing to allocate",
             opt.salient_per_mille);
    std::vector<int> probes = opt.probe_bits;
    std::sort(probes.begin(), probes.end());
    const int n_layers = measure_model.config().n_layer;
    const size_t n_heads = static_cast<size_t>(measure_model.config().n_kv_head);
    DocMeasure sum;
    size_t groups = 1;
    for (size_t d = 0; d < docs.size(); ++d) {
        if (opt.on_stage) opt.on_stage(fmt::format("document {} of {}", d + 1, docs.size()));
        Calibrator cal(measure_model, docs[d], opt);
        const DocMeasure m = cal.measure();
        groups = cal.groups();
        if (d == 0) {
            sum.kl_probe.assign(m.kl_probe.size(), {});
            sum.sse.assign(m.sse.size(), {});
            sum.bytes.assign(m.bytes.size(), {});
            sum.base_bytes.assign(n_layers, 0);
        }
        sum.fp16_bytes += m.fp16_bytes;
        for (int l = 0; l < n_layers; ++l) sum.base_bytes[l] += m.base_bytes[l];
        for (size_t i = 0; i < m.sse.size(); ++i) {
            for (int j = 0; j < kChoices; ++j) {
                sum.kl_probe[i][j] += m.kl_probe[i][j] / static_cast<double>(docs.size());
                sum.sse[i][j] += m.sse[i][j];
                sum.bytes[i][j] += m.bytes[i][j];
            }
        }
    }

    // One item per slot (layer, head group, K|V). Cost of width b: bytes(b) - bytes(8) of that
    // slot (the 8-bit bytes of everything are in base_bytes, counted once per layer). Salient
    // rows were measured at 8 bits whatever b, so their bytes sit in base_bytes.
    std::vector<AllocItem> items;
    double base = 0;
    for (int l = 0; l < n_layers; ++l) base += sum.base_bytes[l];
    for (size_t i = 0; i < sum.sse.size(); ++i) {
        AllocItem it;
        for (int j = 0; j < kChoices; ++j) {
            int p = probes.front();  // the widest probe <= this width
            for (int pb : probes)
                if (pb <= kMinBits + j) p = pb;
            const int jp = p - kMinBits;
            const double ratio = sum.sse[i][j] / std::max(sum.sse[i][jp], 1e-30);
            it.cost.push_back(sum.bytes[i][j] - sum.bytes[i][kChoices - 1]);
            it.distortion.push_back(sum.kl_probe[i][jp] * ratio);
        }
        items.push_back(std::move(it));
    }

    codec::CodecProfile p;
    p.model_fingerprint = fingerprint;
    p.n_layers = static_cast<uint32_t>(n_layers);
    p.sink_tokens = opt.sink_tokens;
    p.saliency_queries = opt.saliency_queries;
    const size_t heads_per_group = n_heads / groups;
    double floor = base;  // every slot at its cheapest width: the smallest any level can be
    for (const auto& it : items) floor += *std::min_element(it.cost.begin(), it.cost.end());
    for (codec::Level level : opt.levels) {
        const double target = codec::level_info(level).target_ratio;
        if (target <= 0)
            fail("codec-calibrate: {} is not a calibrated level", codec::level_name(level));
        const double budget = sum.fp16_bytes / target;
        if (floor > budget) {
            // Salient tokens at 8 bits can leave a small level no room: say so and go on.
            if (opt.on_stage)
                opt.on_stage(fmt::format(
                    "level {} left out: {:.2f}x is the smallest this model's KV gets with {} per "
                    "mille salient tokens, the level needs {:.2f}x",
                    codec::level_name(level), sum.fp16_bytes / floor, opt.salient_per_mille,
                    target));
            continue;
        }
        const std::vector<int> picks = allocate_bits(items, budget - base);
        codec::CodecProfile::LevelTable t;
        t.level = level;
        t.salient_per_mille = opt.salient_per_mille;
        double bytes = base;
        for (int l = 0; l < n_layers; ++l) {
            std::vector<codec::BitWidths> heads(n_heads);
            for (size_t g = 0; g < groups; ++g) {
                const size_t ik = (static_cast<size_t>(l) * groups + g) * 2, iv = ik + 1;
                const auto bk = static_cast<uint8_t>(kMinBits + picks[ik]);
                const auto bv = static_cast<uint8_t>(kMinBits + picks[iv]);
                for (size_t h = g * heads_per_group; h < (g + 1) * heads_per_group; ++h)
                    heads[h] = {bk, bv};
                t.predicted_kl += items[ik].distortion[picks[ik]] + items[iv].distortion[picks[iv]];
                bytes += items[ik].cost[picks[ik]] + items[iv].cost[picks[iv]];
            }
            t.bits.push_back(codec::widest(heads));
            if (groups > 1) t.head_bits.push_back(std::move(heads));
        }
        t.ratio_vs_fp16 = sum.fp16_bytes / bytes;
        p.levels.push_back(std::move(t));
    }

    if (p.levels.empty()) fail("codec-calibrate: no level fits its byte budget");
    nlohmann::ordered_json j;
    j["documents"] = docs.size();
    j["context_tokens"] = opt.context_tokens;
    j["continuation_tokens"] = opt.continuation_tokens;
    j["probe_bits"] = probes;
    j["head_groups"] = groups;
    j["salient_per_mille"] = opt.salient_per_mille;
    for (int probe : probes) {  // per slot (layer, head group): the measured KL of each probe
        // Built apart, then stored: a reference into an ordered_json dangles once it grows.
        nlohmann::ordered_json k = nlohmann::ordered_json::array(), v = k;
        for (size_t i = 0; i + 1 < sum.kl_probe.size(); i += 2) {
            k.push_back(sum.kl_probe[i][probe - kMinBits]);
            v.push_back(sum.kl_probe[i + 1][probe - kMinBits]);
        }
        j[fmt::format("kl_probe_k{}", probe)] = std::move(k);
        j[fmt::format("kl_probe_v{}", probe)] = std::move(v);
    }
    p.calibration_json = j.dump();
    return p;
}

}  // namespace sparkv
