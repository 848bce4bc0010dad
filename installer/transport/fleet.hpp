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

class Fleet {
public:
  Fleet(std::vector<Endpoint> endpoints, FleetOptions options);
  ~Fleet();

  size_t size() const { return m_endpoints.size(); }
  // Labels what follows on `host` ("prepare/sysctl"); planned commands carry it. Called by the worker
  // that owns the host.
  void set_label(size_t host, std::string label) { m_labels[host] = std::move(label); }

  // Whether mutating commands are recorded instead of run (`plan`).
  bool dry_run() const { return m_options.dry_run == DryRun::yes; }
  // Hosts worked on at once (FleetOptions::concurrency).
  size_t concurrency() const { return m_options.concurrency; }
  const Endpoint& endpoint(size_t host) const { return m_endpoints[host]; }

  // Host `host`'s session, connecting (with retries) on first use. A session lost to a dropped
  // connection is reopened on the next call. Only the worker that owns `host` may call this.
  Result<Session*> session(size_t host);

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

  // SSH sessions opened to `host` so far (1 for a healthy run) and connection attempts made.
  int sessions_opened(size_t host) const { return m_opened[host].load(); }
  int connect_attempts(size_t host) const { return m_attempts[host].load(); }

  // What dry-run recorded, in the order it was recorded.
  std::vector<PlannedCommand> plan() const;

private:
  std::vector<Endpoint> m_endpoints;
  FleetOptions m_options;
  std::vector<std::unique_ptr<Session>> m_sessions;
  std::unique_ptr<std::atomic<int>[]> m_opened;
  std::unique_ptr<std::atomic<int>[]> m_attempts;
  mutable std::mutex m_plan_mutex;
  std::vector<PlannedCommand> m_plan;
  std::vector<std::string> m_labels;

  // The one path to a host: in dry-run, a mutating `planned` is recorded and `fn` is not called
  // (the result is `dry`); otherwise `fn(session)` runs, and a session whose connection was lost is
  // dropped so the next use reconnects.
  template<typename T, typename Fn>
  Result<T> through(size_t host, const Command& planned, T dry, Fn&& fn);
};

// --- Inline implementations ---

template<typename T, typename Fn> Result<T> Fleet::through(size_t host, const Command& planned, T dry, Fn&& fn)
{
  if (m_options.dry_run == DryRun::yes && planned.effect == Effect::mutating) {
    std::lock_guard lock(m_plan_mutex);
    m_plan.push_back({m_endpoints[host].name, planned.description,
                      planned.sensitive == Sensitive::yes ? std::string() : planned.script, m_labels[host],
                      planned.sensitive == Sensitive::yes});
    return dry;
  }
  TRY_ASSIGN(Session * s, session(host));
  Result<T> result = fn(*s);
  if (!result && result.error().code == ErrorCode::connect_failed) {
    m_sessions[host].reset();
  }
  return result;
}

template<typename T> std::vector<Result<T>> Fleet::for_each(const std::function<Result<T>(size_t)>& fn)
{
  std::vector<Result<T>> results;
  results.reserve(size());
  for (size_t i = 0; i < size(); ++i) {
    Error e;
    e.code = ErrorCode::interrupted;
    e.host = m_endpoints[i].name;
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
