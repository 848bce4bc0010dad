// A remote command: a POSIX shell script plus how to run it (privilege, deadline, stdin) and what it is
// (read-only or mutating, sensitive or not). The same value drives execution, logging and dry-run plans.
#pragma once

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace mlplat::transport {

// --- Interface ---

enum class Privilege { user, root };      // root: through `sudo -n` unless the login user is root
enum class Effect { read_only, mutating }; // mutating commands are recorded, not run, in dry-run mode
enum class Sensitive { no, yes };          // yes: only the description is logged, never the script

// Bytes for the remote command's stdin, read in chunks so a large file is never held in memory.
class Input {
public:
  virtual ~Input() = default;
  // Copies up to `size` bytes into `buf`; returns 0 at the end. Throws nothing; errors end the input.
  virtual size_t read(char* buf, size_t size) = 0;
  // Whether reading failed (the remote side then gets a short input and the caller an error).
  virtual bool failed() const { return false; }
};

// Input from a string held in memory (how secrets travel: never on a command line).
std::shared_ptr<Input> input_from_string(std::string data);

// Input streamed from a local file.
std::shared_ptr<Input> input_from_file(const std::filesystem::path& path);

struct Command {
  std::string script;                          // POSIX sh; build from argv with text::shell_join
  std::string description;                     // what it does, for logs and plans
  Privilege privilege = Privilege::user;
  Effect effect = Effect::read_only;
  Sensitive sensitive = Sensitive::no;
  std::chrono::seconds deadline{60};           // the remote command is ended when it passes this
  std::shared_ptr<Input> input;                // stdin; none when null
  // Cleanup after an interrupt (releasing the cluster lock): runs although an interrupt was received.
  // Keep its deadline short; the process ends after interrupt::k_grace anyway.
  bool runs_after_interrupt = false;
};

// The search path every remote command runs with.
inline constexpr const char* k_remote_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// The string sent to sshd for `cmd` when logged in as `login_user`: the script under `timeout -k`
// (so the host itself ends it at the deadline), under `sudo -n --` when root is needed and the login
// user is not root.
std::string remote_command_line(const Command& cmd, std::string_view login_user);

} // namespace mlplat::transport
