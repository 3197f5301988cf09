// Where SparKV keeps things that must not live in git (the models it knows by name, demo texts),
// and how a `--model` argument becomes a file.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace sparkv {

// $SPARKV_CACHE, else $XDG_CACHE_HOME/sparkv, else $HOME/.cache/sparkv.
std::string cache_dir();

// A model `sparkv model --fetch` downloads (scripts/fetch_assets.py lists the same ones).
struct KnownModel {
    std::string_view name;         // short name for --model, e.g. "qwen2.5-0.5b"
    std::string_view file;         // file name under cache_dir()/models
    std::string_view description;  // what it is, for help texts and errors
};

// Every known model; the first one is the reference model.
std::span<const KnownModel> known_models();
const KnownModel* find_known_model(std::string_view name);  // nullptr if unknown
std::string known_model_path(const KnownModel& model);      // where the fetch step puts it

// Resolves what a user passed as --model (every command that loads a model calls this):
//   ""                  -> the reference model (smollm2-135m);
//   a known short name  -> that model's file in the cache (a name wins over a same-named file in
//                          the working directory; write ./name for the file);
//   anything else       -> a file path.
// Throws Error naming the fetch command (known models) or the known names (paths) when the file
// does not exist.
std::string resolve_model_path(std::string_view name_or_path);

// The reference model (SmolLM2-135M-Instruct, Q4_1) as placed by `sparkv model --fetch`.
std::string reference_model_path();

// The demo document (a long public-domain text) as placed by the same setup step.
std::string demo_text_path();

// The asset fetch script: <prefix>/share/sparkv/fetch_assets.py beside an installed binary, else
// (build tree) scripts/fetch_assets.py in the sources. Throws Error if neither exists.
std::string fetch_script_path();

// A data file shipped with SparKV (e.g. "codec-profiles/<fingerprint>.json"): <prefix>/share/
// sparkv/<relative> beside an installed binary, else (build tree) share/<relative> in the sources;
// empty when there is none.
std::string shipped_data_path(std::string_view relative);

// Returns the reference model path, or throws an Error telling the user how to fetch it.
std::string require_reference_model();

}  // namespace sparkv
