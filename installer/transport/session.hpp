// One SSH connection to one host (libssh), reused for every command of a run. A Session must be used
// by one thread at a time (libssh's rule); Fleet (fleet.hpp) guarantees that for fan-out.
#pragma once

#include "transport/command.hpp"
#include "util/error.hpp"
#include "util/retry.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace mlplat::config {
struct Host;
}

namespace mlplat::transport {

// --- Interface ---

enum class HostKeyPolicy { strict, accept_new };

// Everything needed to reach one host.
struct Endpoint {
  std::string name;                 // for messages: the host's name in the cluster file
  std::string address;
  int port = 22;
  std::string user = "root";
  std::string key_path;             // empty: agent only
  bool agent = false;
  std::string known_hosts;          // path, "~" already expanded
  HostKeyPolicy host_key_policy = HostKeyPolicy::strict;
  std::chrono::seconds connect_timeout{10};
  // The bastion the connection goes through (a libssh session of its own, whose direct-tcpip channel
  // carries this one: no ProxyCommand, no shell, no OpenSSH client); null: direct.
  std::shared_ptr<const Endpoint> via;
};

// The Endpoint for a host of the cluster file (with its bastion as `via`).
Endpoint endpoint_for(const config::Host& host);

enum class Stream { out, err };

struct ExecResult {
  std::optional<int> exit_status;   // empty when the command died of a signal or sent no status
  std::string signal;               // signal name (e.g. "KILL") when it died of one
  std::string out;
  std::string err;
  std::chrono::milliseconds duration{0};

  bool ok() const { return exit_status == 0; }
  // "exit status 3", "killed by signal KILL" or "no exit status".
  std::string status_text() const;
};

// Receives output as it arrives (before the command ends), e.g. to stream it to the log.
using OutputSink = std::function<void(Stream, std::string_view)>;

struct Tunnel; // through a bastion (session.cpp)

class Session {
public:
  // Connects, verifies the host key against known_hosts under the endpoint's policy, and
  // authenticates with the key file or the agent (never a password). Errors: connect_failed
  // (retryable when refused/reset/timed out), host_key_unknown, host_key_changed, auth_failed.
  static Result<std::unique_ptr<Session>> connect(const Endpoint& endpoint);

  // connect() retried with backoff while the error is retryable. `attempts` receives the count.
  static Result<std::unique_ptr<Session>> connect_with_retry(const Endpoint& endpoint, const Backoff& policy,
                                                             int* attempts = nullptr);

  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Runs `cmd`, feeding its input and draining stdout and stderr together. A non-zero exit is a value
  // in ExecResult, not an error. Errors: deadline (the command was ended), sudo_failed (sudo wanted a
  // password or a TTY), connect_failed with Retryable::yes (the connection dropped), interrupted.
  Result<ExecResult> exec(const Command& cmd, const OutputSink& sink = {});

  // As exec(), and a non-zero exit becomes an error (code failed) quoting the end of stderr.
  Result<ExecResult> run(const Command& cmd, const OutputSink& sink = {});

  // Writes `data` to `remote_path` with `mode`: streamed to a temporary file in the target's directory
  // (created if missing), checked against its sha256 on the host, then renamed over the target. The
  // target is the old file or the complete new one, never a partial file. With Privilege::root the
  // file is owned by root. Errors: io (checksum mismatch or write failure on the host) and exec's.
  Status upload_bytes(const std::string& data, const std::string& remote_path, unsigned mode, Privilege privilege);

  // As upload_bytes, streaming a local file (never held in memory whole).
  Status upload_file(const std::filesystem::path& local_path, const std::string& remote_path, unsigned mode,
                     Privilege privilege);

  const Endpoint& endpoint() const { return m_endpoint; }

private:
  struct Handles;
  friend struct Tunnel;
  // Connects to `endpoint.via` and opens its direct-tcpip channel to the endpoint.
  static Result<std::unique_ptr<Tunnel>> open_tunnel(const Endpoint& endpoint);
  Status upload(const std::shared_ptr<Input>& input, const std::string& sha256, uint64_t size,
                const std::string& remote_path, unsigned mode, Privilege privilege);
  Session(Endpoint endpoint, std::unique_ptr<Handles> handles);

  Endpoint m_endpoint;
  std::unique_ptr<Handles> m_handles;
};

} // namespace mlplat::transport
