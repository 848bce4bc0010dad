// Local file helpers. Files are written atomically (temp file in the same directory, fsync, rename,
// fsync of the directory), so a reader sees the old content or the new one, never half of it.
#pragma once

#include "util/error.hpp"

#include <filesystem>
#include <string>
#include <string_view>

namespace mlplat::fs {

// --- Interface ---

// Reads a whole file. Errors name the path and the system reason.
Result<std::string> read_file(const std::filesystem::path& path);

// Writes `data` to `path` atomically with exactly `mode` (also when the file existed with another mode).
Status write_file_atomic(const std::filesystem::path& path, std::string_view data, unsigned mode);

// Creates `dir` (and parents) if missing and sets it to 0700; an existing directory is tightened to 0700.
Status ensure_private_dir(const std::filesystem::path& dir);

// Expands a leading "~/" with $HOME. Other paths are returned unchanged.
std::string expand_home(std::string_view path);

} // namespace mlplat::fs
