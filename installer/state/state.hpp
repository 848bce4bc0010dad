// The local state of one cluster: its directory (0700, files 0600), the journal of finished steps
// that makes install resumable, and the lock that keeps two runs apart.
//
// The journal records names, hosts and a digest of each step's non-secret inputs, never a value a
// step used: a token, key or password must not be passed to it. Every write replaces the file
// atomically, so a run killed at any moment leaves the journal as it was before or after one step.
#pragma once

#include "util/error.hpp"

#include <filesystem>
#include <optional>
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

  const std::vector<Step>& steps() const { return m_steps; }
  const std::filesystem::path& file() const { return m_file; }

private:
  Status save() const;

  std::filesystem::path m_file;
  std::string m_cluster;
  std::vector<Step> m_steps;
};

// The local lock of a cluster's state directory: flock(2) on `<dir>/lock`, released by the kernel
// when the process ends however it ends (a kill -9 leaves no stale local lock). The file names the
// holder (pid, user, host, command, start time) for the refusal message.
class Lock {
public:
  // Takes the lock or fails at once with ErrorCode::locked (exit 6) naming the holder.
  static Result<Lock> acquire(const std::filesystem::path& dir, const std::string& command);
  // Who holds it: "pid N (user@host, 'command', since TIME)", one line.
  const std::string& holder() const { return m_holder; }
  ~Lock();
  Lock(Lock&& other) noexcept;
  Lock& operator=(Lock&&) = delete;
  Lock(const Lock&) = delete;

private:
  Lock(int fd, std::string holder) : m_fd(fd), m_holder(std::move(holder)) {}
  int m_fd = -1;
  std::string m_holder;
};

} // namespace mlplat::state
