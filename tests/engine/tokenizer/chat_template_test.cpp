#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/error.h"
#include "engine/gguf.h"
#include "engine/gguf_writer.h"
#include "engine/tokenizer/tokenizer.h"
#include "test_support.h"

namespace sparkv {
namespace {

// Jinja sources in the style of the model cards' templates (abridged where SparKV ignores parts).
constexpr const char* kSmolChatML =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}";
constexpr const char* kPlainChatML =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}";
constexpr const char* kLlama3 =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | "
    "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
    "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
constexpr const char* kLlama2 =
    "{% if messages[0]['role'] == 'system' %}{% set system_message = '<<SYS>>\\n' + "
    "messages[0]['content'] | trim + '\\n<</SYS>>\\n\\n' %}{% endif %}{% for message in "
    "loop_messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + "
    "content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + "
    "content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";
constexpr const char* kTinyLlama =
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\\n' + "
    "message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ "
    "'<|system|>\\n' + message['content'] + eos_token }}\n{% elif message['role'] == "
    "'assistant' %}\n{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\n{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n"
    "{% endfor %}";

struct TemplateFile {
    std::vector<uint8_t> bytes;
    GgufFile file;
};

TemplateFile with_template(const std::string& tmpl) {
    GgufWriter w;
    w.set_string("general.architecture", "llama");
    w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>"});
    w.set_u32("tokenizer.ggml.eos_token_id", 2);
    if (!tmpl.empty()) w.set_string("tokenizer.chat_template", tmpl);
    auto bytes = w.serialize();
    auto file = GgufFile::parse(bytes.data(), bytes.size(), "template-test");
    return {std::move(bytes), std::move(file)};
}

const std::vector<ChatMessage> kUserOnly = {{"user", "What is 2+2?"}};
const std::vector<ChatMessage> kConversation = {
    {"system", "Be brief."}, {"user", " Hi "}, {"assistant", "Hello."}, {"user", "Bye"}};

TEST(ChatTemplate, ChatMLInjectsTheTemplatesDefaultSystemMessage) {
    const auto t = with_template(kSmolChatML);
    EXPECT_EQ(apply_chat_template(t.file, kUserOnly, true),
              "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
              "Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
              "<|im_start|>assistant\n");
    // With a system message of its own, nothing is injected.
    EXPECT_EQ(apply_chat_template(t.file, kConversation, false),
              "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n Hi <|im_end|>\n"
              "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n");
    EXPECT_EQ(apply_chat_template(t.file, {}, true), "<|im_start|>assistant\n");
}

TEST(ChatTemplate, PlainChatMLHasNoDefaultSystemMessage) {
    const auto t = with_template(kPlainChatML);
    EXPECT_EQ(apply_chat_template(t.file, kUserOnly, false),
              "<|im_start|>user\nWhat is 2+2?<|im_end|>\n");
}

TEST(ChatTemplate, ReferenceModelTemplate) {
    SPARKV_REQUIRE_REFERENCE_MODEL(path);
    const auto file = GgufFile::open(path);
    const std::string text = apply_chat_template(file, kUserOnly, true);
    EXPECT_EQ(text,
              "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
              "Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
              "<|im_start|>assistant\n");
    // The rendered prompt tokenizes into the chat control tokens.
    const auto tok = Tokenizer::from_gguf(file);
    const auto ids = tok.encode(text, true, true);
    EXPECT_EQ(ids.front(), 1);                            // <|im_start|>
    EXPECT_EQ(std::count(ids.begin(), ids.end(), 2), 2);  // <|im_end|>
    EXPECT_EQ(tok.decode(ids, true), text);
}

TEST(ChatTemplate, Llama3) {
    const auto t = with_template(kLlama3);
    EXPECT_EQ(apply_chat_template(t.file, kConversation, true),
              "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Llama2) {
    const auto t = with_template(kLlama2);
    EXPECT_EQ(apply_chat_template(t.file, kConversation, true),
              "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]Hello.</s>[INST] Bye [/INST]");
    // Without content.strip(), "bos_token + '[INST]" puts <s> inside the history.
    const auto bos = with_template("{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}");
    EXPECT_EQ(apply_chat_template(bos.file, kConversation, true),
              "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n Hi  [/INST]Hello.</s><s>[INST] Bye [/INST]");
    // The plain variant has no <<SYS>> block.
    const auto plain = with_template("{{ '[INST] ' + message['content'] + ' [/INST]' }}");
    EXPECT_EQ(apply_chat_template(plain.file, kConversation, true),
              "[INST] Be brief.\n Hi  [/INST]Hello.</s>[INST] Bye [/INST]");
}

TEST(ChatTemplate, ZephyrStyleUsesTheEosToken) {
    const auto t = with_template(kTinyLlama);
    EXPECT_EQ(apply_chat_template(t.file, kConversation, true),
              "<|system|>\nBe brief.</s>\n<|user|>\n Hi </s>\n<|assistant|>\nHello.</s>\n"
              "<|user|>\nBye</s>\n<|assistant|>\n");
}

TEST(ChatTemplate, UnknownOrMissingTemplatesAreErrors) {
    const auto unknown = with_template("{{ messages | tojson }} and a very long tail that is cut");
    try {
        apply_chat_template(unknown.file, kUserOnly, true);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("{{ messages | tojson }}"), std::string::npos)
            << e.what();
    }
    const auto missing = with_template("");
    EXPECT_THROW(apply_chat_template(missing.file, kUserOnly, true), Error);
    const auto mistral = with_template("{{ '[SYSTEM_PROMPT]' }}{{ '[INST]' }}");
    EXPECT_THROW(apply_chat_template(mistral.file, kUserOnly, true), Error);
}

}  // namespace
}  // namespace sparkv
