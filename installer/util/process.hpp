// Local programs (kubectl, openssl, ssh-keygen, ...) run with Boost.Process v1, reading stdout and
// stderr together (no two-pipe deadlock) under a deadline. Confined to this file so a move to
// Boost.Process v2 or posix_spawn touches nothing else.
#pragma once

#include "util/error.hpp"

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace mlplat {

// --- Interface ---

struct ProcessResult {
  int exit_code = -1;      // valid when signal == 0
  int signal = 0;          // the signal that ended the process, 0 if it exited
  std::string out;
  std::string err;

  bool ok() const { return signal == 0 && exit_code == 0; }
};

// Runs argv[0] (looked up in PATH when it has no '/') with the rest as arguments, feeding `input` on
// stdin. Errors: io when the program cannot be started; deadline when it runs past `deadline` (it is
// killed). A non-zero exit is a value in ProcessResult.
Result<ProcessResult> run_process(const std::vector<std::string>& argv, std::chrono::milliseconds deadline,
                                  const std::string& input = {});

} // namespace mlplat
