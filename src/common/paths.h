// Where SparKV keeps things that must not live in git: the reference model and demo texts.
#pragma once

#include <string>

namespace sparkv {

// $SPARKV_CACHE, else $XDG_CACHE_HOME/sparkv, else $HOME/.cache/sparkv.
std::string cache_dir();

// The reference model (SmolLM2-135M-Instruct, Q4_1) as placed by `sparkv model --fetch`.
std::string reference_model_path();

// The demo document (a long public-domain text) as placed by the same setup step.
std::string demo_text_path();

// The setup script shipped with the sources.
std::string fetch_script_path();

// Returns the reference model path, or throws an Error telling the user how to fetch it.
std::string require_reference_model();

}  // namespace sparkv
