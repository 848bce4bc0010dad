// Reading and validating the cluster file. Everything that can be checked without a host is checked
// here, before the first connection, and every problem found is reported (not only the first).
#pragma once

#include "config/model.hpp"

#include <string>
#include <string_view>

namespace mlplat::config {

// --- Interface ---

// Whether the SSH key files (spec.ssh.keyPath, a bastion's keyPath) must exist and be readable: a
// problem for the commands that connect; `matrix check` and `certs show` judge the file without them.
enum class KeyFiles { check, skip };

// Reads `path`, parses it and validates it. On failure the Error (code config_invalid, exit 2) has one
// child per problem, each with file:line:column and a fix. `key_files` skip: the grammar of the key
// paths is still checked, not that the files exist.
Result<Cluster> load_file(const std::string& path, KeyFiles key_files = KeyFiles::check);

// As load_file, for text already in memory; `file_name` is used in messages.
Result<Cluster> load_text(std::string_view text, const std::string& file_name, KeyFiles key_files = KeyFiles::check);

} // namespace mlplat::config
