// Errors a user can act on. Library code throws sparkv::Error with a message that says what was
// wrong and where; the CLI prints it and exits non-zero. Nothing aborts on bad input.
#pragma once

#include <fmt/format.h>

#include <string>

#include "sparkv/error.h"

namespace sparkv {

template <typename... Args>
[[noreturn]] inline void fail(fmt::format_string<Args...> format, Args&&... args) {
    throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace sparkv
