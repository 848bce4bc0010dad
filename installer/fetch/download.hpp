// Downloads over HTTP(S) with libcurl: mirrors and a base-URL override, retries with backoff, resume
// of a partial file, a stall deadline and a whole-file deadline, a progress line on a terminal, and
// the sha256 checked before the file gets its name (a mismatch leaves nothing that looks valid).
#pragma once

#include "util/error.hpp"
#include "util/progress.hpp"
#include "util/retry.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace mlplat::fetch {

// --- Interface ---

struct Options {
  // Tried in order before the upstream URL. A mirror keeps upstream paths under the host name:
  // https://dl.k8s.io/release/v1.36.4/bin/linux/amd64/kubeadm from mirror http://m:8080/files is
  // fetched as http://m:8080/files/dl.k8s.io/release/v1.36.4/bin/linux/amd64/kubeadm.
  std::vector<std::string> mirrors;
  // Replaces the upstream URL entirely (same mapping as a mirror); with it nothing else is tried,
  // so no request leaves for the internet.
  std::string base_url;
  Backoff backoff{4, std::chrono::milliseconds(500), 2.0, std::chrono::milliseconds(5000), std::chrono::milliseconds(120000), 0.25};
  std::chrono::seconds stall{30};      // an attempt that receives no byte for this long is ended
  std::chrono::seconds deadline{1800}; // one file, all URLs and attempts together
  std::chrono::seconds connect_timeout{15};
  Terminal progress = Terminal::detect;
};

// The URLs tried for `upstream`, in order.
std::vector<std::string> candidates(const std::string& upstream, const Options& options);

// What the file must hash to: a known sha256, or (for an artifact with no published checksum that
// the operator accepted by name) whatever the first complete download hashes to.
struct Expect {
  std::string sha256;
  bool first_download = false;
};

struct Fetched {
  std::string url;       // where it finally came from
  std::string sha256;
  std::uint64_t bytes = 0;
  int attempts = 0;      // over all URLs
  bool resumed = false;  // a partial file was continued with a Range request
};

// Downloads `upstream` (through the candidates) to `dest`. The bytes go to `dest` + ".part" and are
// continued from there after a cut; `dest` appears only once its sha256 matched. `what` names the
// artifact in messages. Errors: 404/403/410 are not retried and name the URL and the artifact; a
// stall or the deadline says what it waited for; every URL tried is listed.
Result<Fetched> download(const std::string& what, const std::string& upstream, const std::filesystem::path& dest,
                         const Expect& expect, const Options& options);

// A small text file (a checksum list), at most `max_bytes`, through the same candidates and retries.
Result<std::string> fetch_text(const std::string& what, const std::string& upstream, const Options& options,
                               std::size_t max_bytes = 1 << 20);

// The sha256 for `file_name` in a checksum file: a bare digest ("<hex>"), or sha256sum lines
// ("<hex>  name" / "<hex> *name"), where the line naming `file_name` wins.
std::optional<std::string> parse_checksum_file(const std::string& text, const std::string& file_name);

} // namespace mlplat::fetch
