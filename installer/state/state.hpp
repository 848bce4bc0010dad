// The local state of one cluster: its directory (0700, files 0600), the journal of finished steps
// that makes install resumable, and the lock that keeps two runs apart.
//
// The journal records names, hosts and a digest of each step's non-secret inputs, never a value a
// step used: a token, key or password must not be passed to it. Every write replaces the file
// atomically, so a run killed at any moment leaves the journal as it was before or after one step.
#pragma once

#include "util/error.hpp"

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace mlplat::state {

// --- Interface ---

// $MLPLAT_STATE_DIR, else $XDG_STATE_HOME/mlplat, else ~/.local/state/mlplat; then /<cluster>.
std::filesystem::path default_dir(const std::string& cluster);

// Creates `dir` (0700) if needed and tightens an existing one; error naming the path otherwise.
Status prepare_dir(const std::filesystem::path& dir);

struct Step {
  std::string phase;   // "prepare"
  std::string name;    // "containerd-config"
  std::string host;    // "" for cluster-wide steps
  std::string digest;  // of the step's non-secret inputs: a changed input means the step runs again
  std::string at;      // UTC, when it finished
};

class Journal {
public:
  // Loads `<dir>/journal.json`, or starts an empty journal when there is none. A journal that cannot
  // be read is an error (it is never silently replaced: it may be the only record of a kubeadm init).
  static Result<Journal> open(const std::filesystem::path& dir, const std::string& cluster);

  // Whether the step finished with these inputs.
  bool done(const std::string& phase, const std::string& name, const std::string& host, const std::string& digest) const;
  // Records a finished step (replacing an earlier record of it) and writes the journal atomically.
  Status record(const std::string& phase, const std::string& name, const std::string& host, const std::string& digest);
  // Forgets every step of `phase` (for --only after a reset of that phase) and writes the journal.
  Status forget_phase(const std::string& phase);

  // Forgets every step of the hosts `hosts` (a reset: install starts afresh there) and writes the
  // journal; their identities are kept.
  Status forget_hosts(const std::set<std::string>& hosts);

  // The identity recorded for `host` (its machine-id and host key, "" when none is recorded yet).
  std::string identity(const std::string& host) const;
  // Compares `identity` with the one recorded for `host` and records it. When a different one was
  // recorded (the host was reprovisioned, or is another machine at that address), every step of the
  // host is forgotten, so it is installed as new, and true is returned. `persist` false (a dry run):
  // the journal file is not written; only this run's view changes.
  Result<bool> adopt_identity(const std::string& host, const std::string& identity, bool persist);

  const std::vector<Step>& steps() const { return m_steps; }
  const std::filesystem::path& file() const { return m_file; }

private:
  Status save() const;

  std::filesystem::path m_file;
  std::string m_cluster;
  std::vector<Step> m_steps;
  std::map<std::string, std::string> m_identities; // host -> identity
};

// The directory of this machine's cluster locks: $MLPLAT_LOCK_DIR, else /run/lock when writable,
// else the system's temporary directory.
std::filesystem::path machine_lock_dir();

// A local lock: flock(2) on a file, released by the kernel when the process ends however it ends (a
// kill -9 leaves no stale local lock). The file names the holder (pid, user, host, command, state
// directory, start time) for the refusal message.
class Lock {
public:
  // The lock of a cluster's state directory (`<dir>/lock`), which guards its journal. Takes it or
  // fails at once with ErrorCode::locked (exit 6) naming the holder.
  static Result<Lock> acquire(const std::filesystem::path& dir, const std::string& command);
  // The lock of a cluster on this machine, whatever state directory a run uses: one file per cluster
  // in machine_lock_dir(), named by the cluster's name and the address of its first control plane
  // (two runs with different --state-dir would otherwise both join nodes). Same refusal.
  static Result<Lock> acquire_cluster(const std::string& cluster, const std::string& first_control_plane,
                                      const std::filesystem::path& state_dir, const std::string& command);
  // Who holds it: "pid N (user@host, 'command', since TIME)", one line.
  const std::string& holder() const { return m_holder; }
  ~Lock();
  Lock(Lock&& other) noexcept;
  Lock& operator=(Lock&&) = delete;
  Lock(const Lock&) = delete;

private:
  // flock(2) on `file` (created with `mode`); `what` describes the run in the holder line.
  static Result<Lock> lock_file(const std::filesystem::path& file, const std::string& what, unsigned mode);
  Lock(int fd, std::string holder) : m_fd(fd), m_holder(std::move(holder)) {}
  int m_fd = -1;
  std::string m_holder;
};

} // namespace mlplat::state
