// Building blocks for install steps: commands marked read-only or mutating (so dry-run records the
// mutating ones), a check script's verdict, and the two common step shapes: files that must have
// exactly some content, and a script checked by another script.
#pragma once

#include "workflow/engine.hpp"

#include <optional>
#include <string>
#include <vector>

namespace mlplat::workflow {

// --- Interface ---

// A read-only command run as root; `input` becomes its stdin.
transport::Command read_only(std::string description, std::string script, std::string input = {});

// A command that changes the host, run as root (dry-run records it instead).
transport::Command mutating(std::string description, std::string script);

// Runs a read-only check: exit 0 = converged, 1 = not, anything else = the check itself failed.
Result<bool> converged(transport::Fleet& fleet, size_t host, const transport::Command& check);

// A file a step writes: its remote path, exact content and mode.
struct FileSpec {
  std::string path;
  std::string content;
  unsigned mode = 0644;
};

// A step converged when every file has exactly its content and mode; applied by uploading them
// (atomically) and then running `after` (e.g. "systemctl daemon-reload"; empty for none).
Step files_step(transport::Fleet& fleet, std::string name, std::vector<FileSpec> files, std::string after);

// How a script step's commands run.
struct ScriptOptions {
  transport::Sensitive sensitive = transport::Sensitive::no;  // yes: outputs withheld from logs and errors
  std::chrono::seconds apply_deadline{600};
};

// A step checked by `check_script` (read-only, exit 0/1) and applied by `apply_script`; verified by
// the check again.
Step script_step(transport::Fleet& fleet, std::string name, std::string digest, std::string check_description,
                 std::string check_script, std::string apply_description, std::string apply_script, ScriptOptions options = {});

// What a wait adds to its error at the deadline: the output of a read-only `diagnose` script (what
// is still missing, what a pod said) under `label`, and a `fix`. Empty: nothing added.
struct WaitDiagnosis {
  std::string label;     // "still not available"
  std::string diagnose;  // read-only shell script
  std::string fix;
};

// A step that waits until `condition` (a read-only shell test) holds, for at most `deadline`; its
// error names `what` and the deadline, plus the diagnosis when one is given. In a plan the wait is
// shown as the command install would run.
Step wait_step(transport::Fleet& fleet, std::string name, std::string what, std::string condition, std::chrono::seconds deadline,
               WaitDiagnosis diagnosis = {});

// A step that applies the manifest `remote_path` with server-side apply. With `content`, the file is
// first written there (0600, directory 0700); without, it is already on the host (the bundle).
// Converged when `kubectl diff` finds nothing to change.
Step apply_step(transport::Fleet& fleet, std::string name, std::string remote_path, std::optional<std::string> content);

// The sanctioned way for a step on one host to run a command on another, the first control plane
// (a token, a drain, a node deletion): through the same Fleet, so dry-run records it under that
// host, and serialized with the commands that host's own worker sends.
class ControlPlane {
public:
  ControlPlane(transport::Fleet& fleet, size_t host);
  // The first control plane's index in the fleet.
  size_t host() const { return m_host; }
  // As Fleet::exec and Fleet::run on that host.
  Result<transport::ExecResult> exec(const transport::Command& cmd);
  Result<transport::ExecResult> run(const transport::Command& cmd);
  // Labels what follows there in a plan ("join/secrets"); only while no worker of a phase owns that
  // host (a phase on other hosts), as the join phases use it.
  void set_label(std::string label) { m_fleet.set_label(m_host, std::move(label)); }
  bool dry_run() const { return m_fleet.dry_run(); }

private:
  transport::Fleet& m_fleet;
  size_t m_host;
};

inline constexpr const char* k_admin_kubeconfig = "/etc/kubernetes/admin.conf";
// kubectl's discovery cache on the hosts (--cache-dir): mlplat's directory, not root's home.
inline constexpr const char* k_kubectl_cache_dir = "/var/lib/mlplat/kubectl-cache";

// kubectl on the first control plane, as the cluster's administrator.
std::string kubectl();

} // namespace mlplat::workflow
