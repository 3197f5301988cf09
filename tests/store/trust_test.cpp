// Signed contexts: keys and key files, manifest signatures, the device-side trust policy.
#include "store/trust.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "store/content_id.h"
#include "store/context_store.h"
#include "store/crypto.h"
#include "store/fs_backend.h"
#include "store/manifest_signature.h"
#include "test_support.h"

namespace sparkv {
namespace {

using testing::TempDir;

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

// A small committed context; returns its manifest text as stored.
struct SmallContext {
    explicit SmallContext(const SigningKey* key, std::string fingerprint = "fp-a")
        : backend(std::make_shared<FilesystemBackend>(dir.path())), store(backend) {
        const std::vector<int32_t> tokens(40, 3);
        ContextWriter writer(store, make_manifest(context_id(fingerprint, tokens, 16),
                                                  {fingerprint, "m", 2, 1, 4}, 40, 16, {"int8"}));
        writer.put_tokens(tokens);
        for (int t = 0; t < 3; ++t)
            for (int l = 0; l < 2; ++l)
                writer.put_unit(t, l, "int8", std::vector<uint8_t>(100 + t * 10 + l, 7));
        manifest = writer.commit(key);
        const auto bytes = backend->get(manifest_key(manifest.context_id));
        text.assign(bytes.begin(), bytes.end());
    }
    TempDir dir;
    std::shared_ptr<FilesystemBackend> backend;
    ContextStore store;
    Manifest manifest;
    std::string text;
};

TEST(Crypto, Sha256MatchesKnownAnswers) {
    // FIPS 180-2 test vectors.
    EXPECT_EQ(to_hex(sha256(std::string_view("abc"))),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(to_hex(sha256(std::string_view(""))),
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    Sha256 incremental;
    incremental.update(std::string_view("ab"));
    incremental.update(std::string_view("c"));
    EXPECT_EQ(incremental.finish(), sha256(std::string_view("abc")));
    EXPECT_FALSE(parse_sha256_hex("abc"));
    EXPECT_FALSE(parse_sha256_hex(std::string(64, 'G')));
    const std::array<uint8_t, 3> a{1, 2, 3}, b{1, 2, 4};
    EXPECT_TRUE(constant_time_equal(a, a));
    EXPECT_FALSE(constant_time_equal(a, b));
    EXPECT_FALSE(constant_time_equal(a, std::span(b).first(2)));
}

TEST(ContentId, IsSha256OfModelTokensAndChunking) {
    const std::vector<int32_t> tokens{1, 2, 3};
    const std::string id = context_id("fp", tokens, 16);
    EXPECT_EQ(id.size(), 64u);
    EXPECT_TRUE(is_context_id(id));
    EXPECT_FALSE(is_context_id(id.substr(0, 32)));  // the old XXH3-128 shape is not an id now
    // The documented layout, hashed independently here.
    std::string layout = "sparkv-context-v2";
    auto le = [&](uint64_t v, int n) {
        for (int i = 0; i < n; ++i) layout.push_back(static_cast<char>(v >> (8 * i)));
    };
    le(2, 8);
    layout += "fp";
    le(16, 4);
    le(3, 8);
    for (int32_t t : tokens) le(static_cast<uint32_t>(t), 4);
    EXPECT_EQ(id, to_hex(sha256(std::string_view(layout))));
}

TEST(SigningKey, KeyFilesRoundTripWithSafePermissions) {
    TempDir dir;
    const std::string prefix = dir.file("cloud");
    const SigningKey key = SigningKey::generate();
    key.write_files(prefix);
    struct stat st;
    ASSERT_EQ(::stat((prefix + ".key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(::stat((prefix + ".pub").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0644u);

    const SigningKey loaded = SigningKey::load(prefix + ".key");
    EXPECT_EQ(loaded.public_key(), key.public_key());
    EXPECT_EQ(load_public_key(prefix + ".pub"), key.public_key());
    EXPECT_EQ(key.public_key().id().size(), 16u);

    const std::string message = "hello";
    const auto bytes = std::span(reinterpret_cast<const uint8_t*>(message.data()), message.size());
    const Ed25519Signature signature = loaded.sign(bytes);
    EXPECT_TRUE(verify_signature(key.public_key(), bytes, signature));
    EXPECT_FALSE(verify_signature(SigningKey::generate().public_key(), bytes, signature));

    EXPECT_THROW(key.write_files(prefix), Error);  // never overwrites a key
    ::chmod((prefix + ".key").c_str(), 0644);
    try {
        SigningKey::load(prefix + ".key");
        FAIL() << "a world-readable secret key was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("chmod 600"), std::string::npos) << e.what();
    }
}

TEST(SigningKey, MalformedKeyFilesAreClearErrors) {
    TempDir dir;
    const SigningKey key = SigningKey::generate();
    key.write_files(dir.file("k"));
    EXPECT_THROW(load_public_key(dir.file("k.key")), Error);  // a secret key is not a public one
    EXPECT_THROW(load_public_key(dir.file("missing.pub")), Error);
    std::ofstream(dir.file("bad.pub")) << "sparkv-ed25519-public-key 1234\n";
    EXPECT_THROW(load_public_key(dir.file("bad.pub")), Error);
    // A secret key whose embedded public half was altered is damaged.
    std::string text = read_file(dir.file("k.key"));
    text[text.size() - 3] = text[text.size() - 3] == 'a' ? 'b' : 'a';
    {
        std::ofstream out(dir.file("damaged.key"));
        out << text;
    }
    ::chmod(dir.file("damaged.key").c_str(), 0600);
    EXPECT_THROW(SigningKey::load(dir.file("damaged.key")), Error);
}

TEST(ManifestSignature, SignsTheWholeManifestAndNothingElse) {
    const SigningKey key = SigningKey::generate();
    SmallContext ctx(&key);
    auto j = nlohmann::json::parse(ctx.text);
    const auto signature = read_manifest_signature(j);
    ASSERT_TRUE(signature);
    EXPECT_EQ(signature->key, key.public_key());
    EXPECT_TRUE(manifest_signature_valid(j, *signature));
    EXPECT_EQ(ctx.store.read_manifest_signature(ctx.manifest.context_id)->key, key.public_key());
    // The parsed manifest is the one that was signed, signature or not.
    EXPECT_EQ(Manifest::parse(ctx.text).to_json(), ctx.manifest.to_json());

    // Any change to any member breaks it: a unit's hash, a size, the token hash, an unknown
    // member a newer build might add.
    auto altered = j;
    altered["units"][3]["objects"]["int8"]["sha256"] = std::string(64, 'a');
    EXPECT_FALSE(manifest_signature_valid(altered, *signature));
    altered = j;
    altered["units"][0]["objects"]["int8"]["bytes"] = 99;
    EXPECT_FALSE(manifest_signature_valid(altered, *signature));
    altered = j;
    altered["tokens"]["sha256"] = std::string(64, '0');
    EXPECT_FALSE(manifest_signature_valid(altered, *signature));
    altered = j;
    altered["extra"] = 1;
    EXPECT_FALSE(manifest_signature_valid(altered, *signature));
    // Formatting is not content: the same JSON re-serialised still verifies.
    EXPECT_TRUE(manifest_signature_valid(nlohmann::json::parse(j.dump(4)), *signature));

    altered = j;
    altered["signature"]["value"] = "zz";
    EXPECT_THROW(read_manifest_signature(altered), Error);
    altered["signature"] = {{"algorithm", "rsa"}};
    EXPECT_THROW(read_manifest_signature(altered), Error);
}

TEST(TrustPolicy, WithoutKeysAcceptsUnsignedManifestsAsBefore) {
    SmallContext ctx(nullptr);
    const TrustPolicy none;
    EXPECT_FALSE(none.enforcing());
    EXPECT_NE(none.describe().find("not verified"), std::string::npos);
    EXPECT_EQ(none.check_manifest(ctx.text, ctx.manifest.context_id).to_json(),
              ctx.manifest.to_json());
    EXPECT_FALSE(ctx.store.read_manifest_signature(ctx.manifest.context_id));
}

TEST(TrustPolicy, RefusesUnsignedForeignAndAlteredManifests) {
    const SigningKey cloud = SigningKey::generate(), foreign = SigningKey::generate();
    const TrustPolicy trust({cloud.public_key()});
    EXPECT_TRUE(trust.enforcing());

    SmallContext good(&cloud);
    EXPECT_EQ(trust.check_manifest(good.text, good.manifest.context_id).to_json(),
              good.manifest.to_json());

    auto expect_refused = [&](const std::string& text, const std::string& id,
                              const std::string& why) {
        try {
            trust.check_manifest(text, id);
            ADD_FAILURE() << "accepted: " << why;
        } catch (const UntrustedContext& e) {
            EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
        }
    };
    SmallContext unsigned_ctx(nullptr);
    expect_refused(unsigned_ctx.text, unsigned_ctx.manifest.context_id, "not signed");
    SmallContext foreign_ctx(&foreign);
    expect_refused(foreign_ctx.text, foreign_ctx.manifest.context_id,
                   "signed by key " + foreign.public_key().id() + ", which is not trusted");
    auto j = nlohmann::json::parse(good.text);
    j["units"][1]["objects"]["int8"]["xxh64"] = "0000000000000000";
    expect_refused(j.dump(), good.manifest.context_id, "altered after signing");
    // A second trusted key is accepted too.
    EXPECT_NO_THROW(TrustPolicy({cloud.public_key(), foreign.public_key()})
                        .check_manifest(foreign_ctx.text, foreign_ctx.manifest.context_id));
}

TEST(TrustPolicy, RefusesManifestsOfAnotherModelOrContext) {
    const SigningKey cloud = SigningKey::generate();
    const TrustPolicy trust({cloud.public_key()});
    SmallContext other_model(&cloud, "fp-other");
    // Signed and intact, but for other weights: never usable with this model.
    EXPECT_THROW(trust.check_manifest(other_model.text, other_model.manifest.context_id, "fp-a"),
                 UntrustedContext);
    EXPECT_NO_THROW(
        trust.check_manifest(other_model.text, other_model.manifest.context_id, "fp-other"));
    // Served under another id: an Error whether or not keys are trusted.
    const std::string other_id(64, 'c');
    EXPECT_THROW(trust.check_manifest(other_model.text, other_id), Error);
    EXPECT_THROW(TrustPolicy().check_manifest(other_model.text, other_id), Error);
    EXPECT_THROW(trust.check_manifest("{not json", other_id), Error);
}

TEST(TrustPolicy, ObjectsMustMatchSizeChecksumAndUnderTrustTheirSha256) {
    const SigningKey cloud = SigningKey::generate();
    const std::vector<uint8_t> bytes(300, 9);
    UnitObject object{bytes.size(), object_checksum(bytes), sha256(bytes)};
    const TrustPolicy none, trust({cloud.public_key()});
    EXPECT_TRUE(none.object_matches(object, bytes));
    EXPECT_TRUE(trust.object_matches(object, bytes));
    // An object whose xxhash64 was forged to match (it is not cryptographic) but whose SHA-256
    // differs passes without trust and is refused with it.
    object.sha256[0] ^= 1;
    EXPECT_TRUE(none.object_matches(object, bytes));
    EXPECT_FALSE(trust.object_matches(object, bytes));
    EXPECT_FALSE(none.object_matches(object, std::span(bytes).first(299)));
}

TEST(TrustPolicy, LoadsTrustKeyFiles) {
    TempDir dir;
    const SigningKey a = SigningKey::generate(), b = SigningKey::generate();
    a.write_files(dir.file("a"));
    b.write_files(dir.file("b"));
    const TrustPolicy trust = TrustPolicy::from_files({dir.file("a.pub"), dir.file("b.pub")});
    ASSERT_EQ(trust.keys().size(), 2u);
    EXPECT_EQ(trust.keys()[1], b.public_key());
    EXPECT_NE(trust.describe().find(a.public_key().id()), std::string::npos);
    EXPECT_THROW(TrustPolicy::from_files({dir.file("a.key")}), Error);
}

TEST(ContextStore, IsCompleteChecksTheSha256OfEveryObject) {
    SmallContext ctx(nullptr);
    EXPECT_TRUE(ctx.store.is_complete(ctx.manifest.context_id, ContextStore::Check::checksums));
    // Same size and (forged) xxhash64, different bytes: only the SHA-256 notices.
    auto m = ctx.manifest;
    std::vector<uint8_t> other(m.unit(1, 1).objects[0].bytes, 8);
    ctx.backend->put(unit_key(m, "int8", 1, 1), other);
    m.unit(1, 1).objects[0].xxh64 = object_checksum(other);
    const std::string text = m.dump();
    ctx.backend->put(manifest_key(m.context_id),
                     std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
    EXPECT_TRUE(ctx.store.is_complete(m.context_id, ContextStore::Check::sizes));
    EXPECT_FALSE(ctx.store.is_complete(m.context_id, ContextStore::Check::checksums));
}

}  // namespace
}  // namespace sparkv
