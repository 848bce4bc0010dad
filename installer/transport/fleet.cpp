#include "transport/fleet.hpp"

#include <fmt/core.h>

namespace mlplat::transport {

Fleet::Fleet(std::vector<Endpoint> endpoints, FleetOptions options)
  : m_endpoints(std::move(endpoints)),
    m_options(options),
    m_sessions(m_endpoints.size()),
    m_opened(new std::atomic<int>[m_endpoints.size()]()),
    m_attempts(new std::atomic<int>[m_endpoints.size()]()),
    m_labels(m_endpoints.size())
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

namespace {

ExecResult planned_success()
{
  ExecResult r;
  r.exit_status = 0;
  return r;
}

Command planned_upload(std::string description)
{
  Command c;
  c.description = std::move(description);
  c.effect = Effect::mutating;
  return c;
}

} // namespace

Result<ExecResult> Fleet::exec(size_t host, const Command& cmd)
{
  return through<ExecResult>(host, cmd, planned_success(), [&](Session& s) { return s.exec(cmd); });
}

Result<ExecResult> Fleet::run(size_t host, const Command& cmd)
{
  return through<ExecResult>(host, cmd, planned_success(), [&](Session& s) { return s.run(cmd); });
}

Status Fleet::upload_bytes(size_t host, const std::string& data, const std::string& remote_path, unsigned mode,
                           Privilege privilege)
{
  const auto planned = planned_upload(fmt::format("upload {} ({} bytes, mode {:04o})", remote_path, data.size(), mode));
  return through<bool>(host, planned, true, [&](Session& s) -> Result<bool> {
    TRY(s.upload_bytes(data, remote_path, mode, privilege));
    return true;
  }).map([](bool) {});
}

Status Fleet::upload_file(size_t host, const std::filesystem::path& local, const std::string& remote_path, unsigned mode,
                          Privilege privilege)
{
  std::error_code ec;
  const auto size = std::filesystem::file_size(local, ec);
  const auto planned = planned_upload(fmt::format("upload {} ({} bytes, mode {:04o}) from {}", remote_path, ec ? 0 : size, mode,
                                                  local.string()));
  return through<bool>(host, planned, true, [&](Session& s) -> Result<bool> {
    TRY(s.upload_file(local, remote_path, mode, privilege));
    return true;
  }).map([](bool) {});
}

std::vector<PlannedCommand> Fleet::plan() const
{
  std::lock_guard lock(m_plan_mutex);
  return m_plan;
}

} // namespace mlplat::transport
