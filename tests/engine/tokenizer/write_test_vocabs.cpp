// Writes the tokenizer test vocabularies as GGUF files, for bench/tokenizer_fixtures.mjs to load
// into llama.cpp:  write_test_vocabs <directory>   (prints one "name path" line per file).
#include <cstdio>
#include <exception>
#include <filesystem>

#include "test_vocabs.h"

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <output directory>\n", argv[0]);
        return 2;
    }
    try {
        std::filesystem::create_directories(argv[1]);
        for (const auto& vocab : sparkv::testing::all_test_vocabs()) {
            const auto path = (std::filesystem::path(argv[1]) / (vocab.name + ".gguf")).string();
            vocab.writer.write(path);
            std::printf("%s %s\n", vocab.name.c_str(), path.c_str());
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "write_test_vocabs: %s\n", e.what());
        return 1;
    }
    return 0;
}
