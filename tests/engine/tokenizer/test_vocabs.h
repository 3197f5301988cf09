// Small deterministic vocabulary-only GGUF files for tokenizer tests: a byte-level BPE vocabulary
// trained on a built-in corpus (written once per pre-tokenizer name) and a SentencePiece-style
// vocabulary with byte fallback. The same bytes are produced on every run and machine, so the
// llama.cpp fixtures made from them (bench/tokenizer_fixtures.mjs) stay valid.
#pragma once

#include <string>
#include <vector>

#include "engine/gguf_writer.h"

namespace sparkv::testing {

struct TestVocab {
    std::string name;  // file stem, also the fixture key: "bpe-llama-bpe", "spm", ...
    GgufWriter writer;
};

// Byte-level BPE vocabulary with tokenizer.ggml.pre = `pre` ("" leaves the key out).
GgufWriter make_bpe_vocab(const std::string& pre);

// SentencePiece-style vocabulary (tokenizer.ggml.model "llama").
GgufWriter make_spm_vocab();

// Every vocabulary the fixtures cover.
std::vector<TestVocab> all_test_vocabs();

}  // namespace sparkv::testing
