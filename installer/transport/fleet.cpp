#include "transport/fleet.hpp"

#include <fmt/core.h>

namespace mlplat::transport {

Fleet::Fleet(std::vector<Endpoint> endpoints, FleetOptions options)
  : m_endpoints(std::move(endpoints)),
    m_options(options),
    m_sessions(m_endpoints.size()),
    m_opened(new std::atomic<int>[m_endpoints.size()]()),
    m_attempts(new std::atomic<int>[m_endpoints.size()]())
{
}

Fleet::~Fleet() = default;

Result<Session*> Fleet::session(size_t host)
{
  if (!m_sessions[host]) {
    int attempts = 0;
    auto s = Session::connect_with_retry(m_endpoints[host], m_options.connect_backoff, &attempts);
    m_attempts[host] += attempts;
    if (!s) {
      return tl::unexpected(s.error());
    }
    ++m_opened[host];
    m_sessions[host] = std::move(*s);
  }
  return m_sessions[host].get();
}

void Fleet::record(size_t host, const Command& cmd)
{
  std::lock_guard lock(m_plan_mutex);
  m_plan.push_back({m_endpoints[host].name, cmd.description, cmd.sensitive == Sensitive::yes ? std::string() : cmd.script});
}

void Fleet::forget_if_lost(size_t host, const Error& error)
{
  if (error.code == ErrorCode::connect_failed) {
    m_sessions[host].reset();
  }
}

Result<ExecResult> Fleet::exec(size_t host, const Command& cmd)
{
  if (m_options.dry_run == DryRun::yes && cmd.effect == Effect::mutating) {
    record(host, cmd);
    ExecResult planned;
    planned.exit_status = 0;
    return planned;
  }
  TRY_ASSIGN(Session * s, session(host));
  auto result = s->exec(cmd);
  if (!result) {
    forget_if_lost(host, result.error());
  }
  return result;
}

Result<ExecResult> Fleet::run(size_t host, const Command& cmd)
{
  if (m_options.dry_run == DryRun::yes && cmd.effect == Effect::mutating) {
    return exec(host, cmd);
  }
  TRY_ASSIGN(Session * s, session(host));
  auto result = s->run(cmd);
  if (!result) {
    forget_if_lost(host, result.error());
  }
  return result;
}

Status Fleet::upload_bytes(size_t host, const std::string& data, const std::string& remote_path, unsigned mode,
                           Privilege privilege)
{
  if (m_options.dry_run == DryRun::yes) {
    Command planned;
    planned.description = fmt::format("upload {} ({} bytes, mode {:04o})", remote_path, data.size(), mode);
    record(host, planned);
    return {};
  }
  TRY_ASSIGN(Session * s, session(host));
  return s->upload_bytes(data, remote_path, mode, privilege);
}

Status Fleet::upload_file(size_t host, const std::filesystem::path& local, const std::string& remote_path, unsigned mode,
                          Privilege privilege)
{
  if (m_options.dry_run == DryRun::yes) {
    Command planned;
    planned.description = fmt::format("upload {} to {} (mode {:04o})", local.string(), remote_path, mode);
    record(host, planned);
    return {};
  }
  TRY_ASSIGN(Session * s, session(host));
  return s->upload_file(local, remote_path, mode, privilege);
}

std::vector<PlannedCommand> Fleet::plan() const
{
  std::lock_guard lock(m_plan_mutex);
  return m_plan;
}

} // namespace mlplat::transport
