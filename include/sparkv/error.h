// The one exception type SparKV throws for anything a user can fix: bad input, missing files,
// corrupt data, unreachable servers. The message says what was wrong and where.
#pragma once

#include <stdexcept>
#include <string>

namespace sparkv {

class Error : public std::runtime_error {
  public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace sparkv
