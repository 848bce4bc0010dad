// The hosts of one run: one SSH session per host, opened on first use and reused for every command of
// the run; bounded fan-out where each host is handled by one worker at a time; and the one path every
// remote change goes through, so that dry-run records mutating commands instead of running them.
#pragma once

#include "transport/session.hpp"
#include "util/parallel.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace mlplat::transport {

// --- Interface ---

enum class DryRun { no, yes };

struct FleetOptions {
  size_t concurrency = 32;   // hosts worked on at once
  Backoff connect_backoff;   // retries for retryable connection errors
  DryRun dry_run = DryRun::no;
};

// A mutating command that dry-run recorded instead of running.
struct PlannedCommand {
  std::string host;
  std::string description;
  std::string script;        // empty for sensitive commands
  std::string step;          // the label set for the host when it was recorded (set_label)
  bool sensitive = false;    // its script is withheld
};

// The hosts of one run as every phase sees them. This class holds the one dry-run-aware path (a
// mutating command or an upload is recorded, not sent, in dry-run) and the fan-out; how a command
// reaches a host is its implementation's: SshFleet (libssh, one session per host) for real runs, a
// fake in the unit tests.
class Fleet {
public:
  Fleet(std::vector<Endpoint> endpoints, FleetOptions options);
  virtual ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  size_t size() const { return m_endpoints.size(); }
  // Labels what follows on `host` ("prepare/sysctl"); planned commands carry it. Called by the worker
  // that owns the host.
  void set_label(size_t host, std::string label) { m_labels[host] = std::move(label); }

  // Whether mutating commands are recorded instead of run (`plan`).
  bool dry_run() const { return m_options.dry_run == DryRun::yes; }
  // Hosts worked on at once (FleetOptions::concurrency).
  size_t concurrency() const { return m_options.concurrency; }
  const Endpoint& endpoint(size_t host) const { return m_endpoints[host]; }

  // Makes sure `host` can be reached (connecting on first use, with retries); read-only.
  virtual Status connect(size_t host) = 0;

  // Runs `cmd` on `host`, or, in dry-run, records it when it is mutating and returns exit status 0.
  Result<ExecResult> exec(size_t host, const Command& cmd);

  // As exec, with a non-zero exit turned into an error (Session::run).
  Result<ExecResult> run(size_t host, const Command& cmd);

  // The dry-run-aware uploads (Session::upload_bytes / upload_file).
  Status upload_bytes(size_t host, const std::string& data, const std::string& remote_path, unsigned mode, Privilege privilege);
  Status upload_file(size_t host, const std::filesystem::path& local, const std::string& remote_path, unsigned mode,
                     Privilege privilege);

  // Calls `fn(host)` for every host, at most `concurrency` at once, each host owned by one worker for
  // the call. Returns one Result per host in host order; hosts not started because of an interrupt
  // get an `interrupted` error.
  template<typename T> std::vector<Result<T>> for_each(const std::function<Result<T>(size_t)>& fn);

  // One error naming every failed host, or success.
  template<typename T> Status summarize(const std::vector<Result<T>>& results) const;

  // What dry-run recorded, in the order it was recorded.
  std::vector<PlannedCommand> plan() const;

protected:
  // How a command and an upload reach `host` (never called for what dry-run records). A step on one
  // host may run a command on another (the first control plane) while that host's worker is idle;
  // an implementation serializes commands to one host.
  virtual Result<ExecResult> send(size_t host, const Command& cmd, bool fail_on_exit) = 0;
  virtual Status send_bytes(size_t host, const std::string& data, const std::string& remote_path, unsigned mode, Privilege privilege) = 0;
  virtual Status send_file(size_t host, const std::filesystem::path& local, const std::string& remote_path, unsigned mode,
                           Privilege privilege) = 0;

private:
  std::vector<Endpoint> m_endpoints;
  FleetOptions m_options;
  mutable std::mutex m_plan_mutex;
  std::vector<PlannedCommand> m_plan;
  std::vector<std::string> m_labels;

  // In dry-run, records a mutating `planned` and returns true (the caller then does not send).
  bool record(size_t host, const Command& planned);
};

// The Fleet over SSH: one libssh session per host, opened on first use and reused for every command
// of the run, reopened after a dropped connection.
class SshFleet final : public Fleet {
public:
  SshFleet(std::vector<Endpoint> endpoints, FleetOptions options);
  ~SshFleet() override;

  Status connect(size_t host) override;

  // Host `host`'s session, connecting (with retries) on first use. A session lost to a dropped
  // connection is reopened on the next call. A host never reached in this run keeps its first
  // failure (the retries were made once; the preflight and the identity check that follows both
  // report it without waiting again). Only the worker that owns `host` may call this.
  Result<Session*> session(size_t host);

  // SSH sessions opened to `host` so far (1 for a healthy run) and connection attempts made.
  int sessions_opened(size_t host) const { return m_opened[host].load(); }
  int connect_attempts(size_t host) const { return m_attempts[host].load(); }

protected:
  Result<ExecResult> send(size_t host, const Command& cmd, bool fail_on_exit) override;
  Status send_bytes(size_t host, const std::string& data, const std::string& remote_path, unsigned mode, Privilege privilege) override;
  Status send_file(size_t host, const std::filesystem::path& local, const std::string& remote_path, unsigned mode,
                   Privilege privilege) override;

private:
  Backoff m_backoff;
  std::vector<std::unique_ptr<Session>> m_sessions;
  std::unique_ptr<std::mutex[]> m_host_mutex;
  std::unique_ptr<std::atomic<int>[]> m_opened;
  std::unique_ptr<std::atomic<int>[]> m_attempts;
  std::vector<std::optional<Error>> m_first_failure;

  // `fn(session)` under the host's mutex; a session whose connection was lost is dropped so the
  // next use reconnects.
  template<typename T, typename Fn> Result<T> with_session(size_t host, Fn&& fn);
};

// --- Inline implementations ---

template<typename T> std::vector<Result<T>> Fleet::for_each(const std::function<Result<T>(size_t)>& fn)
{
  std::vector<Result<T>> results;
  results.reserve(size());
  for (size_t i = 0; i < size(); ++i) {
    Error e;
    e.code = ErrorCode::interrupted;
    e.host = endpoint(i).name;
    e.message = "not started: interrupted";
    results.emplace_back(tl::unexpected(std::move(e)));
  }
  parallel_for(size(), m_options.concurrency, [&](size_t i) { results[i] = fn(i); });
  return results;
}

template<typename T> Status Fleet::summarize(const std::vector<Result<T>>& results) const
{
  std::vector<Error> failures;
  for (const auto& r : results) {
    if (!r) {
      failures.push_back(r.error());
    }
  }
  return aggregate_failures(std::move(failures), results.size());
}

} // namespace mlplat::transport
