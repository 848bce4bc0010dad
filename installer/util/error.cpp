#include "util/error.hpp"

#include "util/interrupt.hpp"

#include <fmt/core.h>

#include <algorithm>

namespace mlplat {

namespace {

void render_into(const Error& e, std::string& out, const std::string& indent)
{
  out += indent;
  if (e.where) {
    out += fmt::format("{}:{}:{}: ", e.where->file, e.where->line, e.where->column);
  }
  if (!e.host.empty()) {
    out += e.host + ": ";
  }
  out += e.message;
  if (!e.fix.empty()) {
    out += fmt::format("\n{}  fix: {}", indent, e.fix);
  }
  for (const auto& child : e.children) {
    out += "\n";
    render_into(child, out, indent + "  ");
  }
}

int code_exit(ErrorCode code)
{
  switch (code) {
  case ErrorCode::failed: return k_exit_failed;
  case ErrorCode::usage: return k_exit_config;
  case ErrorCode::config_invalid: return k_exit_config;
  case ErrorCode::preflight_failed: return k_exit_preflight;
  case ErrorCode::connect_failed: return k_exit_connect;
  case ErrorCode::auth_failed: return k_exit_connect;
  case ErrorCode::host_key_unknown: return k_exit_host_key;
  case ErrorCode::host_key_changed: return k_exit_host_key;
  case ErrorCode::sudo_failed: return k_exit_preflight;
  case ErrorCode::deadline: return k_exit_failed;
  case ErrorCode::io: return k_exit_failed;
  case ErrorCode::locked: return k_exit_locked;
  case ErrorCode::partial: return k_exit_partial;
  case ErrorCode::interrupted: return interrupt::exit_code();
  case ErrorCode::internal: return k_exit_internal;
  }
  return k_exit_internal;
}

} // namespace

std::string Error::render() const
{
  std::string out;
  render_into(*this, out, "");
  return out;
}

tl::unexpected<Error> fail(ErrorCode code, std::string message, std::string fix)
{
  Error e;
  e.code = code;
  e.message = std::move(message);
  e.fix = std::move(fix);
  return tl::unexpected(std::move(e));
}

int exit_code_for(const Error& error)
{
  if (error.children.empty()) {
    return code_exit(error.code);
  }
  // A host key mismatch anywhere is a security stop and wins; otherwise all children must agree.
  const bool any_host_key = std::any_of(error.children.begin(), error.children.end(), [](const Error& c) {
    return exit_code_for(c) == k_exit_host_key;
  });
  if (any_host_key) {
    return k_exit_host_key;
  }
  const int first = exit_code_for(error.children.front());
  const bool agree = std::all_of(error.children.begin(), error.children.end(),
                                 [first](const Error& c) { return exit_code_for(c) == first; });
  return agree ? first : code_exit(error.code);
}

Fatal::Fatal(Error error) : std::runtime_error(error.message), m_error(std::move(error)) {}

} // namespace mlplat
