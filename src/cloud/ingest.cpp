#include "cloud/ingest.h"

#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <future>
#include <optional>

#include "cloud/saliency.h"
#include "codec/codec.h"
#include "common/error.h"
#include "common/timer.h"
#include "engine/engine.h"
#include "store/content_id.h"

namespace sparkv {

namespace {

ModelInfo model_info(const Model& model) {
    const auto& c = model.config();
    ModelInfo info;
    info.fingerprint = hex64(model.fingerprint());
    info.name = c.name.empty() ? std::string(architecture_name(c.arch)) : c.name;
    info.n_layers = c.n_layer;
    info.n_kv_heads = c.n_kv_head;
    info.head_dim = c.head_dim;
    return info;
}

IngestResult summarize(const Manifest& manifest) {
    IngestResult r;
    r.context_id = manifest.context_id;
    r.attempt = manifest.attempt;
    r.tokens = manifest.n_tokens;
    r.chunks = manifest.n_chunks();
    r.layers = manifest.n_layers();
    for (const auto& level : manifest.levels)
        r.bytes_per_level.emplace_back(level, manifest.total_bytes(level));
    return r;
}

// Puts run on their own threads, a few at a time: an object store answers each PUT after a
// network round trip (and its replicas' writes), which would otherwise add up unit by unit.
class PutQueue {
  public:
    explicit PutQueue(ContextWriter& writer) : writer_(writer) {}
    ~PutQueue() {
        for (auto& f : pending_)
            if (f.valid()) f.wait();  // an exception is already on its way out
    }
    void put(int32_t t, int32_t l, const std::string& level, std::vector<uint8_t> bytes) {
        if (pending_.size() >= kInFlight) wait_one();
        pending_.push_back(std::async(
            std::launch::async,
            [this, t, l, level, b = std::move(bytes)] { writer_.put_unit(t, l, level, b); }));
    }
    void wait_all() {
        while (!pending_.empty()) wait_one();
    }

  private:
    static constexpr size_t kInFlight = 8;
    void wait_one() {
        auto f = std::move(pending_.front());
        pending_.pop_front();
        f.get();  // rethrows the put's error
    }
    ContextWriter& writer_;
    std::deque<std::future<void>> pending_;
};

std::vector<codec::Level> parse_levels(const std::vector<std::string>& names) {
    if (names.empty()) fail("ingest: no quality levels given");
    std::vector<codec::Level> levels;
    for (const auto& name : names) {
        const auto level = codec::level_from_name(name);
        for (auto seen : levels)
            if (seen == level) fail("ingest: level '{}' given twice", name);
        levels.push_back(level);
    }
    return levels;
}

// The result for a context the store already holds completely at every level in `levels`, or
// nullopt if it must be (re-)ingested. With a signing key, a complete context that is unsigned or
// signed by another key is re-signed, but only after every object passed its checksums: a signature
// vouches for the bytes, so the bytes are read first.
std::optional<IngestResult> already_stored(ContextStore& store, const std::string& id,
                                           const std::vector<std::string>& levels,
                                           const SigningKey* key) {
    if (!store.is_complete(id)) return std::nullopt;
    const Manifest manifest = store.read_manifest(id);
    for (const auto& level : levels)
        if (std::find(manifest.levels.begin(), manifest.levels.end(), level) ==
            manifest.levels.end())
            return std::nullopt;
    std::optional<ManifestSignature> signature;
    try {
        signature = store.read_manifest_signature(id);
    } catch (const Error&) {
        return std::nullopt;  // a damaged signature: redo the context
    }
    IngestResult r = summarize(manifest);
    r.already_present = true;
    if (!key || (signature && signature->key == key->public_key())) {
        r.signed_by = signature ? signature->key.id() : "";
        return r;
    }
    if (!store.is_complete(id, ContextStore::Check::checksums)) return std::nullopt;
    ContextWriter writer(store, manifest);  // the same attempt, re-committed
    writer.commit(key);
    r.resigned = true;
    r.signed_by = key->public_key().id();
    return r;
}

}  // namespace

std::string sparse_kv_identity(std::string_view fingerprint, const SparseAttentionOptions& s) {
    return kv_identity(fingerprint, to_manifest(s));
}

SparseSettings to_manifest(const SparseAttentionOptions& s) {
    return {s.tau, s.block, s.min_similarity, s.sink_blocks, s.local_blocks};
}

SparseAttentionOptions from_manifest(const SparseSettings& s) {
    SparseAttentionOptions o{.tau = static_cast<float>(s.tau),
                             .block = s.block,
                             .min_similarity = static_cast<float>(s.min_similarity),
                             .sink_blocks = s.sink_blocks,
                             .local_blocks = s.local_blocks};
    kernels::validate(o);
    return o;
}

IngestResult ingest_context(const Model& model, ContextStore& store,
                            std::span<const int32_t> tokens, const IngestOptions& options) {
    const double t_start = now_seconds();
    const auto& c = model.config();
    if (tokens.empty()) fail("ingest: the document has no tokens");
    if (options.chunk_tokens < 1) fail("ingest: chunk size must be at least 1 token");
    check_context_length(c, static_cast<int64_t>(tokens.size()), options.allow_long_context,
                         "ingest: the context");
    kernels::validate(options.sparse);
    const std::string fingerprint = hex64(model.fingerprint());
    const std::string id =
        context_id(sparse_kv_identity(fingerprint, options.sparse), tokens, options.chunk_tokens);
    parse_levels(options.levels);  // a bad list fails here, also for a context already stored
    if (auto present = already_stored(store, id, options.levels, options.signing_key)) {
        present->seconds = now_seconds() - t_start;
        return *present;
    }
    // A context stored without some level asked for is ingested again, keeping the levels it had:
    // a device that asks for one of those must still find it.
    std::vector<std::string> level_names = options.levels;
    if (store.is_complete(id))
        for (const auto& level : store.read_manifest(id).levels)
            if (std::find(level_names.begin(), level_names.end(), level) == level_names.end())
                level_names.push_back(level);
    const auto levels = parse_levels(level_names);
    std::optional<codec::CodecProfile> profile = options.profile;
    if (!profile) profile = codec::find_model_profile(model.fingerprint());
    for (codec::Level level : levels)  // fail before the prefill, not after it
        if (codec::level_info(level).calibrated()) {
            const codec::CodecProfile& p =
                codec::require_profile(profile ? &*profile : nullptr, level);
            if (p.model_fingerprint != model.fingerprint())
                fail("ingest: codec profile {:016x} is for another model", p.hash());
            p.bits_for(level, 0);
        }

    Manifest skeleton_manifest =
        make_manifest(id, model_info(model), static_cast<int64_t>(tokens.size()),
                      options.chunk_tokens, level_names);
    skeleton_manifest.sparse = to_manifest(options.sparse);
    ContextWriter writer(store, std::move(skeleton_manifest));
    writer.set_prompt_format(options.prompt_format);
    const Manifest& skeleton = writer.manifest();
    Engine engine(model, {.n_ctx = static_cast<int64_t>(tokens.size()),
                          .n_threads = options.threads,
                          .sparse = options.sparse});

    IngestResult result;
    try {
        writer.put_tokens(tokens);

        PutQueue puts(writer);
        std::vector<uint16_t> k, v;
        // Salient rows per level and layer (context positions), when a level keeps them.
        std::vector<std::vector<std::vector<uint32_t>>> salient(levels.size());
        std::vector<uint32_t> rows;
        const auto encode_chunk = [&](const ChunkInfo& chunk) {
            const codec::UnitShape shape{static_cast<uint32_t>(chunk.n_tokens),
                                         static_cast<uint16_t>(c.n_kv_head),
                                         static_cast<uint16_t>(c.head_dim)};
            k.resize(shape.elements());
            v.resize(shape.elements());
            for (int32_t l = 0; l < c.n_layer; ++l) {
                engine.export_kv(l, chunk.first_token, chunk.n_tokens, k.data(), v.data());
                const codec::UnitKey key{model.fingerprint(), static_cast<uint32_t>(chunk.index),
                                         static_cast<uint32_t>(l)};
                for (size_t i = 0; i < levels.size(); ++i) {
                    codec::EncodeOptions eo(levels[i], static_cast<uint32_t>(c.n_layer));
                    eo.profile = profile ? &*profile : nullptr;
                    if (!salient[i].empty()) {
                        rows = rows_in_chunk(salient[i][static_cast<size_t>(l)],
                                             static_cast<uint32_t>(chunk.first_token),
                                             static_cast<uint32_t>(chunk.n_tokens));
                        eo.salient_rows = rows;
                        eo.salient_bits = profile->find(levels[i])->salient_bits;
                    }
                    auto bytes = codec::encode_unit(key, shape, codec::contiguous(k.data(), shape),
                                                    codec::contiguous(v.data(), shape), eo);
                    puts.put(chunk.index, l, level_names[i], std::move(bytes));
                }
            }
            puts.wait_all();
        };
        // A level with salient tokens ranks them by the attention of the context's last queries,
        // so every chunk is prefilled before any is encoded; otherwise each chunk is encoded
        // right after its prefill.
        bool deferred = false;
        for (size_t i = 0; i < levels.size(); ++i) {
            const codec::CodecProfile::LevelTable* t = profile ? profile->find(levels[i]) : nullptr;
            deferred = deferred || (t && t->salient_per_mille > 0);
        }
        for (const auto& chunk : skeleton.chunks) {
            const double t0 = now_seconds();
            HiddenState h = engine.embed(tokens.subspan(static_cast<size_t>(chunk.first_token),
                                                        static_cast<size_t>(chunk.n_tokens)),
                                         chunk.first_token);
            // Every layer but the last runs in full; the last one only needs its K/V projection.
            while (h.layer < c.n_layer - 1) {
                engine.run_layer(h);
                writer.set_active_blocks(chunk.index, h.layer - 1,
                                         engine.last_attention_stats().active_blocks);
            }
            engine.project_kv(h);
            writer.set_active_blocks(chunk.index, c.n_layer - 1, 0);  // no attention
            const double t1 = now_seconds();
            result.prefill_seconds += t1 - t0;
            if (!deferred) {
                encode_chunk(chunk);
                result.encode_seconds += now_seconds() - t1;
            }
            if (options.on_progress)
                options.on_progress(
                    {chunk.index + 1, skeleton.n_chunks(), now_seconds() - t_start});
        }
        if (deferred) {
            const double t0 = now_seconds();
            const auto mass = attention_mass(engine, tokens, profile->saliency_queries);
            for (size_t i = 0; i < levels.size(); ++i)
                if (codec::level_info(levels[i]).calibrated())
                    salient[i] = salient_positions(*profile, levels[i], mass);
            result.saliency_seconds = now_seconds() - t0;
            for (const auto& chunk : skeleton.chunks) encode_chunk(chunk);
            result.encode_seconds += now_seconds() - t0 - result.saliency_seconds;
        }
    } catch (const Error& e) {
        // Nothing is visible until the manifest is written, so a failed ingest is simply rerun.
        fail("ingest of context {} failed; nothing was committed, run it again: {}", id, e.what());
    }
    const Manifest& manifest = writer.commit(options.signing_key);
    IngestResult summary = summarize(manifest);
    summary.signed_by = options.signing_key ? options.signing_key->public_key().id() : "";
    summary.prefill_seconds = result.prefill_seconds;
    summary.encode_seconds = result.encode_seconds;
    summary.saliency_seconds = result.saliency_seconds;
    summary.seconds = now_seconds() - t_start;
    return summary;
}

}  // namespace sparkv
