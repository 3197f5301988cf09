// Unicode tables, UTF-8 decoding and the pre-tokenizers' word splits on hand-checked examples.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "engine/tokenizer/pretokenize.h"
#include "engine/tokenizer/unicode.h"

namespace sparkv {
namespace {

using unicode::Category;

TEST(Unicode, CategoriesFromTheGeneratedTables) {
    EXPECT_STREQ(unicode::tables_version(), "15.1.0");
    EXPECT_EQ(unicode::category('A'), Category::Letter);
    EXPECT_EQ(unicode::category('7'), Category::Number);
    EXPECT_EQ(unicode::category('!'), Category::Punctuation);
    EXPECT_EQ(unicode::category('$'), Category::Symbol);
    EXPECT_EQ(unicode::category(' '), Category::Separator);
    EXPECT_EQ(unicode::category('\n'), Category::Control);
    EXPECT_EQ(unicode::category(0x00E9), Category::Letter);       // é
    EXPECT_EQ(unicode::category(0x0301), Category::Mark);         // combining acute
    EXPECT_EQ(unicode::category(0x0663), Category::Number);       // Arabic-Indic three
    EXPECT_EQ(unicode::category(0x4E2D), Category::Letter);       // 中
    EXPECT_EQ(unicode::category(0x1F600), Category::Symbol);      // 😀
    EXPECT_EQ(unicode::category(0x0378), Category::Undefined);    // unassigned
    EXPECT_EQ(unicode::category(0xE000), Category::Control);      // private use
    EXPECT_EQ(unicode::category(0x2FFC), Category::Symbol);       // new in Unicode 15.1
    EXPECT_EQ(unicode::category(0x10FFFF), Category::Undefined);  // noncharacter
    EXPECT_EQ(unicode::category(0x110000), Category::Undefined);
}

TEST(Unicode, WhiteSpace) {
    for (uint32_t cp : {0x09u, 0x0Au, 0x0Du, 0x20u, 0x85u, 0xA0u, 0x1680u, 0x2000u, 0x200Au,
                        0x2028u, 0x202Fu, 0x3000u})
        EXPECT_TRUE(unicode::is_whitespace(cp)) << std::hex << cp;
    for (uint32_t cp : {0x08u, 0x61u, 0x200Bu, 0xFEFFu, 0x180Eu})
        EXPECT_FALSE(unicode::is_whitespace(cp)) << std::hex << cp;
}

TEST(Unicode, LenientUtf8Decoding) {
    auto decode = [](std::string_view s) {
        std::vector<uint32_t> out;
        unicode::decode_utf8(s, out);
        return out;
    };
    const uint32_t r = unicode::kReplacementCharacter;
    EXPECT_EQ(decode("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"),
              (std::vector<uint32_t>{'a', 0xE9, 0x20AC, 0x1F600}));
    EXPECT_EQ(decode("\xFF"), (std::vector<uint32_t>{r}));
    EXPECT_EQ(decode("\xE2\x82"), (std::vector<uint32_t>{r, r}));        // truncated
    EXPECT_EQ(decode("\xE2(\xA1"), (std::vector<uint32_t>{r, '(', r}));  // bad continuation
    EXPECT_EQ(decode("\xC0\x80"), (std::vector<uint32_t>{0}));           // overlong, as llama.cpp
    EXPECT_EQ(decode("\xED\xA0\x80"), (std::vector<uint32_t>{0xD800}));  // surrogate, as llama.cpp
    EXPECT_EQ(decode("\xF4\x90\x80\x80"), (std::vector<uint32_t>{r, r, r, r}));  // > U+10FFFF
}

TEST(Unicode, ByteLevelMapIsABijection) {
    std::vector<bool> seen(512, false);
    for (int b = 0; b < 256; ++b) {
        const uint32_t cp = unicode::byte_to_code_point(static_cast<uint8_t>(b));
        ASSERT_LT(cp, 512u);
        EXPECT_FALSE(seen[cp]);
        seen[cp] = true;
        EXPECT_EQ(unicode::code_point_to_byte(cp), b);
    }
    EXPECT_EQ(unicode::byte_to_code_point(' '), 0x120u);   // Ġ
    EXPECT_EQ(unicode::byte_to_code_point('\n'), 0x10Au);  // Ċ
    EXPECT_EQ(unicode::byte_to_code_point('A'), 'A');
    EXPECT_EQ(unicode::code_point_to_byte(0x4E2D), -1);
}

std::vector<std::string> split(pretok::Kind kind, std::string_view text) {
    std::vector<uint32_t> cps;
    unicode::decode_utf8(text, cps);
    std::vector<uint32_t> lengths;
    pretok::Splitter(kind).split(cps, lengths);
    std::vector<std::string> words;
    size_t at = 0;
    for (const uint32_t n : lengths) {
        std::string w;
        for (size_t k = at; k < at + n; ++k) unicode::append_utf8(cps[k], w);
        words.push_back(w);
        at += n;
    }
    return words;
}

using Words = std::vector<std::string>;

TEST(PreTokenizer, Gpt2) {
    EXPECT_EQ(split(pretok::Kind::Gpt2, "Hello world's  12 apples!!\n\n"),
              (Words{"Hello", " world", "'s", " ", " 12", " apples", "!!", "\n\n"}));
    EXPECT_EQ(split(pretok::Kind::Gpt2, "I'M  x"), (Words{"I", "'", "M", " ", " x"}));
}

TEST(PreTokenizer, SmollmIsolatesEveryDigit) {
    EXPECT_EQ(split(pretok::Kind::Smollm, "In 1862, x2"),
              (Words{"In", " ", "1", "8", "6", "2", ",", " x", "2"}));
}

TEST(PreTokenizer, Llama3) {
    EXPECT_EQ(split(pretok::Kind::Llama3, "I'M 1234567 (hi)\n\n  next"),
              (Words{"I", "'M", " ", "123", "456", "7", " (", "hi", ")\n\n", " ", " next"}));
    EXPECT_EQ(split(pretok::Kind::Llama3, "a  \n b"), (Words{"a", "  \n", " b"}));
}

TEST(PreTokenizer, Qwen2OneDigitAtATime) {
    EXPECT_EQ(split(pretok::Kind::Qwen2, "x 123"), (Words{"x", " ", "1", "2", "3"}));
}

TEST(PreTokenizer, DefaultGroupsDigitsByThreeAndIsolatesPunctuation) {
    EXPECT_EQ(split(pretok::Kind::Default, "a 1234567 b+=c"),
              (Words{"a", " ", "123", "456", "7", " b", "+=", "c"}));
}

TEST(PreTokenizer, NamesAndDefaults) {
    EXPECT_EQ(pretok::lookup("").kind, pretok::Kind::Default);
    EXPECT_EQ(pretok::lookup("smollm").kind, pretok::Kind::Smollm);
    EXPECT_TRUE(pretok::lookup("llama-bpe").ignore_merges);
    EXPECT_TRUE(pretok::lookup("llama-bpe").add_bos);
    EXPECT_EQ(pretok::lookup("qwen2").kind, pretok::Kind::Qwen2);
    EXPECT_EQ(pretok::lookup("gpt-2").kind, pretok::Kind::Gpt2);
    EXPECT_THROW(pretok::lookup("tekken"), Error);
}

}  // namespace
}  // namespace sparkv
