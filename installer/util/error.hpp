// Error model: expected failures are values (Result<T>); exceptions are for bugs and are caught once in
// main. Every Error knows which documented exit code it maps to and whether retrying may help.
#pragma once

#include <tl/expected.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace mlplat {

// --- Interface ---

// What went wrong, coarse enough to choose an exit code and a retry policy.
enum class ErrorCode {
  failed,            // generic failure (a remote command failed, a command is not built yet)
  usage,             // bad command line
  config_invalid,    // the cluster file (or another input file) is wrong
  preflight_failed,  // checks found an error
  connect_failed,    // TCP/SSH connection could not be established or was lost
  auth_failed,       // the host refused our key / agent
  host_key_unknown,  // strict policy and the host key is not in known_hosts
  host_key_changed,  // the host presented a different key than known_hosts holds
  sudo_failed,       // sudo -n needs a password or a TTY
  deadline,          // a command or wait ran past its deadline
  io,                // local file or system error
  locked,            // the cluster is locked by another run
  partial,           // some hosts or steps failed; the run can be resumed
  interrupted,       // SIGINT/SIGTERM
  internal,          // a bug
};

// Whether trying again could succeed (connection refused/reset, timeouts) or cannot (auth, host key, sudo).
enum class Retryable { no, yes };

// A position inside an input file; line and column are 1-based.
struct Location {
  std::string file;
  int line = 0;
  int column = 0;
};

struct Error {
  ErrorCode code = ErrorCode::failed;
  std::string message;             // one sentence: what is wrong
  std::string fix;                 // how to fix it, when we know
  std::string host;                // which host, when it concerns one
  std::optional<Location> where;   // which file position, when it concerns one
  Retryable retryable = Retryable::no;
  std::vector<Error> children;     // per-host or per-item errors aggregated under this one

  // Renders "file:line:col: host: message" plus an indented "fix:" line and the children.
  std::string render() const;
};

template<typename T> using Result = tl::expected<T, Error>;
using Status = Result<void>;

// Builds an unexpected Error in one expression: `return fail(ErrorCode::io, "cannot read x");`.
tl::unexpected<Error> fail(ErrorCode code, std::string message, std::string fix = {});

// The exit code documented in docs/exit-codes.md for an error of this code. Aggregates take the most
// severe child code when all children agree on it, and `partial` otherwise.
int exit_code_for(const Error& error);

// Documented exit codes.
inline constexpr int k_exit_ok = 0;
inline constexpr int k_exit_failed = 1;
inline constexpr int k_exit_config = 2;
inline constexpr int k_exit_preflight = 3;
inline constexpr int k_exit_connect = 4;
inline constexpr int k_exit_host_key = 5;
inline constexpr int k_exit_locked = 6;
inline constexpr int k_exit_partial = 7;
inline constexpr int k_exit_degraded = 8;  // mlplat status: the cluster is reachable and not healthy (docs/status.md)
inline constexpr int k_exit_internal = 70;
inline constexpr int k_exit_interrupted = 130; // SIGINT; SIGTERM gives 143 (interrupt::exit_code)

// Thrown only for conditions that cannot be handled where they arise; caught once in main.
class Fatal : public std::runtime_error {
public:
  explicit Fatal(Error error);
  const Error& error() const noexcept { return m_error; }

private:
  Error m_error;
};

} // namespace mlplat

// Propagate an error from an expression returning Result<T>; TRY_ASSIGN also binds the value.
#define MLPLAT_CONCAT2(a, b) a##b
#define MLPLAT_CONCAT(a, b) MLPLAT_CONCAT2(a, b)
#define TRY(expr)                                                                                  \
  do {                                                                                             \
    auto&& try_result_ = (expr);                                                                   \
    if (!try_result_) {                                                                            \
      return tl::unexpected(std::move(try_result_).error());                                       \
    }                                                                                              \
  } while (false)
#define TRY_ASSIGN(var, expr) TRY_ASSIGN_IMPL(MLPLAT_CONCAT(try_tmp_, __LINE__), var, expr)
#define TRY_ASSIGN_IMPL(tmp, var, expr)                                                            \
  auto tmp = (expr);                                                                               \
  if (!tmp) {                                                                                      \
    return tl::unexpected(std::move(tmp).error());                                                 \
  }                                                                                                \
  var = std::move(*tmp)
