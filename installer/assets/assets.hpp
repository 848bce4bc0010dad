// Data files (profiles/, checks/, manifests/, tls/) embedded in the binary at build time. A directory
// given with --data-dir (or $MLPLAT_DATA_DIR) overrides them file by file: a file present there wins.
#pragma once

#include "util/error.hpp"

#include <string>
#include <vector>

namespace mlplat::assets {

// --- Interface ---

// Sets the override directory (empty: none).
void set_override_dir(std::string dir);

// The content of data file `path` (relative to the repository top, e.g. "profiles/gcp/starter.yaml"),
// from the override directory if it has it, else from the embedded copy. Error if neither has it.
Result<std::string> read(const std::string& path);

// Every embedded path starting with `prefix`, sorted.
std::vector<std::string> list(const std::string& prefix);

} // namespace mlplat::assets
