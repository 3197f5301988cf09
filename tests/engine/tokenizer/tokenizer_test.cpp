// Tokenizer behaviour that does not need llama.cpp: round trips, byte handling, special tokens,
// BOS/EOS, end of generation, bad input and speed. The small vocabularies are built in memory.
#include "engine/tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "common/paths.h"
#include "common/timer.h"
#include "engine/gguf.h"
#include "test_support.h"
#include "test_vocabs.h"

namespace sparkv {
namespace {

Tokenizer from_writer(const GgufWriter& writer) {
    const auto bytes = writer.serialize();
    const auto file = GgufFile::parse(bytes.data(), bytes.size(), "test-vocab");
    return Tokenizer::from_gguf(file);  // copies what it needs; the buffer may go
}

int32_t id_of(const Tokenizer& tok, std::string_view text) {
    for (int32_t id = 0; id < tok.n_vocab(); ++id)
        if (tok.token_to_piece(id, true) == text) return id;
    return -1;
}

// Texts every tokenizer must give back byte for byte.
const std::vector<std::string>& round_trip_texts() {
    static const std::vector<std::string> texts = {
        "",
        "Hello world",
        " leading space",
        "trailing spaces   ",
        "runs  of   spaces    and\t\ttabs\t and\n\n\nnewlines\r\n\r\nCRLF",
        "It's we're they've I'm you'll he'd can't IT'S",
        "31415926535897932384626433832795028841971693993751058209749445923",
        "1,234,567.89 +42 -7 1e-10 0xDEADBEEF",
        "Le garçon a mangé une crème brûlée. Straße Äpfel",
        "Ελληνικά, Русский текст, עברית, العربية, हिन्दी, ภาษาไทย",
        "日本語の文章と中文的句子。한국어 문장",
        "emoji 😀🚀✨ family 👨‍👩‍👧‍👦 flag 🇫🇷 skin 👍🏽 music 𝄞",
        "combining e\xCC\x81 a\xCC\x88 and zero\xE2\x80\x8Bwidth",
        "def f(x):\n    return {'a': [1, 2, 3]}  # code\n",
        "int main() { return a->b && c || d ? 0 : -1; }",
        "no\xC2\xA0"
        "break\xE3\x80\x80ideographic space",
        std::string("\x01\x02 controls \x7F and NUL \0 inside", 30),
        "<|im_start|> looks special but is parsed as text",
    };
    return texts;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

TEST(Tokenizer, RoundTripsOnSmallVocabularies) {
    for (const auto& vocab : testing::all_test_vocabs()) {
        const auto tok = from_writer(vocab.writer);
        for (const auto& text : round_trip_texts()) {
            const std::string_view t(text.data(), text.size());
            for (const bool add_special : {false, true}) {
                const auto ids = tok.encode(t, add_special, false);
                EXPECT_EQ(tok.decode(ids), text) << vocab.name << ": \"" << text << "\"";
            }
        }
    }
}

TEST(Tokenizer, RoundTripsOnReferenceModel) {
    SPARKV_REQUIRE_REFERENCE_MODEL(path);
    const auto tok = Tokenizer::from_gguf(GgufFile::open(path));
    EXPECT_EQ(tok.model_name(), "gpt2");
    EXPECT_EQ(tok.pre_name(), "smollm");
    EXPECT_EQ(tok.n_vocab(), 49152);
    for (const auto& text : round_trip_texts())
        EXPECT_EQ(tok.decode(tok.encode(text, true, false)), text) << "\"" << text << "\"";
}

TEST(Tokenizer, CharacterSplitOverTokensDecodesWhole) {
    // U+1D11E (4 bytes) and U+20AC (3 bytes) are not in the training corpus: their bytes stay
    // separate tokens, each an incomplete UTF-8 sequence on its own.
    const auto tok = from_writer(testing::make_bpe_vocab("llama-bpe"));
    const std::string text =
        "clef \xF0\x9D\x84\x9E costs \xE2\x82\xAC"
        "5";
    const auto ids = tok.encode(text, false, false);
    std::string concatenated;
    int partial_pieces = 0;
    for (const int32_t id : ids) {
        const std::string piece = tok.token_to_piece(id);
        concatenated += piece;
        if (piece.size() == 1 && static_cast<uint8_t>(piece[0]) >= 0x80) ++partial_pieces;
    }
    EXPECT_GE(partial_pieces, 7);
    EXPECT_EQ(concatenated, text);
    EXPECT_EQ(tok.decode(ids), text);
}

TEST(Tokenizer, SentencePieceSpacesBytesAndUnknown) {
    const auto tok = from_writer(testing::make_spm_vocab());
    // The space prefix: "the" and " the" both start with the U+2581 piece.
    const auto the = tok.encode("the", false, false);
    ASSERT_FALSE(the.empty());
    EXPECT_EQ(tok.token_to_piece(the[0]).front(), ' ');
    EXPECT_EQ(tok.decode(the), "the");
    // Byte fallback: "€" is not in the vocabulary and becomes <0xE2> <0x82> <0xAC>.
    const auto euro = tok.encode("\xE2\x82\xAC", false, false);
    ASSERT_GE(euro.size(), 3u);
    EXPECT_EQ(std::vector<int32_t>(euro.end() - 3, euro.end()),
              (std::vector<int32_t>{3 + 0xE2, 3 + 0x82, 3 + 0xAC}));
    // <unk> is matched as a special token only when asked to.
    const auto unk = tok.encode("<unk>", false, true);
    EXPECT_EQ(unk, std::vector<int32_t>{0});
    EXPECT_EQ(tok.decode(unk), "");
    EXPECT_EQ(tok.decode(unk, true), "<unk>");
    EXPECT_NE(tok.encode("<unk>", false, false), std::vector<int32_t>{0});
}

TEST(Tokenizer, SentencePieceWithoutSpacePrefix) {
    auto writer = testing::make_spm_vocab();
    writer.set_bool("tokenizer.ggml.add_space_prefix", false);
    const auto tok = from_writer(writer);
    const auto ids = tok.encode("the", false, false);
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(tok.token_to_piece(ids[0]).front(), 't');
    EXPECT_EQ(tok.decode(ids), "the");
}

TEST(Tokenizer, InvalidUtf8NeverThrows) {
    const std::vector<std::string> bad = {
        "\xFF",
        "abc\xC3",
        "\xE2\x82",
        "\x80\x80 stray",
        "\xC0\x80 overlong",
        "\xED\xA0\x80 surrogate",
        "\xF4\x90\x80\x80 beyond U+10FFFF",
        "\xF8\x88\x80\x80\x80",
        "\xE2(\xA1 mixed",
        std::string("nul\0inside", 10),
    };
    std::vector<Tokenizer> toks;
    for (const auto& vocab : testing::all_test_vocabs()) toks.push_back(from_writer(vocab.writer));
    uint32_t state = 12345;
    std::vector<std::string> texts = bad;
    for (int n = 0; n < 200; ++n) {
        std::string random;
        for (int k = 0; k < 1 + n % 37; ++k) {
            state = state * 1664525u + 1013904223u;
            random.push_back(static_cast<char>(state >> 24));
        }
        texts.push_back(random);
    }
    for (const auto& tok : toks) {
        for (const auto& text : texts) {
            std::vector<int32_t> ids;
            ASSERT_NO_THROW(ids = tok.encode(text, true, true)) << tok.pre_name();
            ASSERT_NO_THROW(tok.decode(ids, true));
        }
    }
}

TEST(Tokenizer, InvalidUtf8BecomesReplacementCharacterInByteLevelBpe) {
    // As in llama.cpp: each byte that starts no complete sequence is read as U+FFFD.
    const auto tok = from_writer(testing::make_bpe_vocab("smollm"));
    EXPECT_EQ(tok.decode(tok.encode("a\xFF"
                                    "b",
                                    false, false)),
              "a\xEF\xBF\xBD"
              "b");
    EXPECT_EQ(tok.decode(tok.encode("\xE2\x82", false, false)), "\xEF\xBF\xBD\xEF\xBF\xBD");
    EXPECT_EQ(tok.decode(tok.encode("\xF4\x90\x80\x80", false, false)),
              "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Tokenizer, InvalidUtf8RoundTripsThroughSentencePieceByteFallback) {
    const auto tok = from_writer(testing::make_spm_vocab());
    for (const std::string text : {"\xFF", "abc\xC3", "\xE2(\xA1 mixed", "\xED\xA0\x80"})
        EXPECT_EQ(tok.decode(tok.encode(text, false, false)), text);
}

TEST(Tokenizer, OutOfRangeIdsAreErrors) {
    const auto tok = from_writer(testing::make_bpe_vocab("qwen2"));
    const std::vector<int32_t> past_end = {1, tok.n_vocab()};
    const std::vector<int32_t> negative = {-1};
    EXPECT_THROW(tok.decode(past_end), Error);
    EXPECT_THROW(tok.decode(negative), Error);
    EXPECT_THROW(tok.token_to_piece(tok.n_vocab()), Error);
    try {
        tok.decode(past_end);
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(std::to_string(tok.n_vocab())), std::string::npos);
    }
}

TEST(Tokenizer, SpecialTokensOnlyWhenParsed) {
    const auto tok = from_writer(testing::make_bpe_vocab("smollm"));
    const int32_t start = id_of(tok, "<|im_start|>");
    const int32_t end = id_of(tok, "<|im_end|>");
    ASSERT_GE(start, 0);
    const std::string text = "<|im_start|>user\nHi<|im_end|>";
    const auto parsed = tok.encode(text, false, true);
    ASSERT_GE(parsed.size(), 3u);
    EXPECT_EQ(parsed.front(), start);
    EXPECT_EQ(parsed.back(), end);
    EXPECT_EQ(tok.decode(parsed), "user\nHi");
    EXPECT_EQ(tok.decode(parsed, true), text);
    const auto plain = tok.encode(text, false, false);
    EXPECT_EQ(std::count(plain.begin(), plain.end(), start), 0);
    EXPECT_EQ(tok.decode(plain), text);
    // User-defined tokens are split out even without parse_special, and always rendered.
    const int32_t tool = id_of(tok, "<tool>");
    const auto with_tool = tok.encode("a<tool>b", false, false);
    EXPECT_EQ(std::count(with_tool.begin(), with_tool.end(), tool), 1);
    EXPECT_EQ(tok.decode(with_tool), "a<tool>b");
}

TEST(Tokenizer, BosAndEosFollowMetadataAndDefaults) {
    const auto llama3 = from_writer(testing::make_bpe_vocab("llama-bpe"));  // adds BOS by default
    const auto ids = llama3.encode("hi", true, false);
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids.front(), llama3.bos());
    EXPECT_EQ(llama3.decode(ids), "hi");
    EXPECT_EQ(llama3.decode(ids, true), "<|begin_of_text|>hi");

    const auto gpt2 = from_writer(testing::make_bpe_vocab("gpt-2"));  // does not
    EXPECT_EQ(gpt2.encode("hi", true, false), gpt2.encode("hi", false, false));

    auto writer = testing::make_bpe_vocab("qwen2");
    writer.set_bool("tokenizer.ggml.add_bos_token", true);
    writer.set_bool("tokenizer.ggml.add_eos_token", true);
    const auto both = from_writer(writer);
    const auto wrapped = both.encode("hi", true, false);
    EXPECT_EQ(wrapped.front(), both.bos());
    EXPECT_EQ(wrapped.back(), both.eos());

    const auto spm = from_writer(testing::make_spm_vocab());  // SentencePiece: BOS by default
    const auto spm_ids = spm.encode("Hello there", true, false);
    EXPECT_EQ(spm_ids.front(), 1);
    EXPECT_EQ(spm.decode(spm_ids), "Hello there");
}

TEST(Tokenizer, EndOfGeneration) {
    const auto tok = from_writer(testing::make_bpe_vocab("llama-bpe"));
    for (const char* text : {"<|endoftext|>", "<|im_end|>", "<|eot_id|>"})
        EXPECT_TRUE(tok.is_end_of_generation(id_of(tok, text))) << text;
    for (const char* text : {"<|im_start|>", "<|start_header_id|>", "<tool>", "a"})
        EXPECT_FALSE(tok.is_end_of_generation(id_of(tok, text))) << text;
    EXPECT_FALSE(tok.is_end_of_generation(-1));
    EXPECT_FALSE(tok.is_end_of_generation(tok.n_vocab()));
}

TEST(Tokenizer, EndOfGenerationOnReferenceModel) {
    SPARKV_REQUIRE_REFERENCE_MODEL(path);
    const auto tok = Tokenizer::from_gguf(GgufFile::open(path));
    EXPECT_EQ(tok.bos(), 1);
    EXPECT_EQ(tok.eos(), 2);
    EXPECT_TRUE(tok.is_end_of_generation(2));                                  // <|im_end|>
    EXPECT_TRUE(tok.is_end_of_generation(0));                                  // <|endoftext|>
    EXPECT_FALSE(tok.is_end_of_generation(1));                                 // <|im_start|>
    EXPECT_EQ(tok.encode("hi", true, false), tok.encode("hi", false, false));  // add_bos false
}

TEST(Tokenizer, UnsupportedTokenizersAreNamedInErrors) {
    auto expect_error = [](const GgufWriter& w, const std::string& needle) {
        try {
            from_writer(w);
            ADD_FAILURE() << "no error, expected one mentioning " << needle;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
    };
    expect_error(testing::make_bpe_vocab("no-such-pre"), "'no-such-pre'");
    auto bert = testing::make_bpe_vocab("gpt-2");
    bert.set_string("tokenizer.ggml.model", "bert");
    expect_error(bert, "'bert'");
    GgufWriter empty;
    empty.set_string("general.architecture", "llama");
    expect_error(empty, "tokenizer.ggml.model");
    auto short_types = testing::make_spm_vocab();
    short_types.set_i32_array("tokenizer.ggml.token_type", {1, 1});
    expect_error(short_types, "token_type");
}

TEST(Tokenizer, LongWordsStayFast) {
    // One 200 KB "word" of each kind: the merge loops must not be quadratic.
    const auto tok = from_writer(testing::make_bpe_vocab("llama-bpe"));
    const auto spm = from_writer(testing::make_spm_vocab());
    std::string letters;
    uint32_t state = 7;
    for (int i = 0; i < 200000; ++i) {
        state = state * 1664525u + 1013904223u;
        letters.push_back(static_cast<char>('a' + (state >> 24) % 26));
    }
    for (const std::string& text :
         {letters, std::string(200000, ' '), std::string(200000, '7'), std::string(200000, 'e')}) {
        for (const Tokenizer* t : {&tok, &spm}) {
            const double start = now_seconds();
            const auto ids = t->encode(text, false, false);
            const double seconds = now_seconds() - start;
            EXPECT_EQ(t->decode(ids), text);
            EXPECT_LT(seconds, 1.0) << "encoding a 200 KB word took " << seconds << " s";
        }
    }
}

TEST(Tokenizer, DemoTextSpeed) {
    SPARKV_REQUIRE_REFERENCE_MODEL(path);
    const std::string text = read_file(demo_text_path());
    if (text.empty()) GTEST_SKIP() << "demo text not fetched (sparkv model --fetch)";
    const auto tok = Tokenizer::from_gguf(GgufFile::open(path));
    std::vector<double> ms;
    size_t n_tokens = 0;
    for (int run = 0; run < 11; ++run) {
        const double start = now_seconds();
        n_tokens = tok.encode(text, false, false).size();
        ms.push_back((now_seconds() - start) * 1e3);
    }
    std::sort(ms.begin(), ms.end());
    const double median = ms[ms.size() / 2];
    std::printf(
        "demo text: %zu bytes -> %zu tokens, encode median %.2f ms (min %.2f, max %.2f) "
        "over %zu runs, %.1f MB/s\n",
        text.size(), n_tokens, median, ms.front(), ms.back(), ms.size(),
        text.size() / median / 1e3);
    // The target is well under 50 ms; the bound leaves room for a loaded machine.
    EXPECT_LT(median, 100.0);
}

}  // namespace
}  // namespace sparkv
