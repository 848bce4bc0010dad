// One HTTP(S) request for a health probe (the ingress smoke test, `certs show --live`): libcurl,
// the server verified against a given CA file, a name resolved to a given address (as curl's
// --resolve), no redirect followed, a whole-request deadline.
#pragma once

#include "util/error.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace mlplat::fetch {

// --- Interface ---

struct ProbeRequest {
  std::string url;
  std::string ca_file;               // empty: the system's trust store
  std::vector<std::string> resolve;  // "name:port:address", as CURLOPT_RESOLVE
  std::chrono::milliseconds timeout{10000};
};

struct ProbeReply {
  long status = 0;
  std::string body;         // at most 1 MiB
  std::string location;     // the Location header, when any
  std::string peer_serial;  // HTTPS: the server certificate's serial, lowercase hex without colons
};

// Sends a GET. Any HTTP reply is a value; a connection, TLS or verification failure is an error
// naming the URL and libcurl's reason (ErrorCode::connect_failed).
Result<ProbeReply> get(const ProbeRequest& request);

} // namespace mlplat::fetch
