// Reading and validating the cluster file. Everything that can be checked without a host is checked
// here, before the first connection, and every problem found is reported (not only the first).
#pragma once

#include "config/model.hpp"

#include <string>
#include <string_view>

namespace mlplat::config {

// --- Interface ---

// Reads `path`, parses it and validates it. On failure the Error (code config_invalid, exit 2) has one
// child per problem, each with file:line:column and a fix.
Result<Cluster> load_file(const std::string& path);

// As load_file, for text already in memory; `file_name` is used in messages.
Result<Cluster> load_text(std::string_view text, const std::string& file_name);

} // namespace mlplat::config
