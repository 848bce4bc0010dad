#include "transport/fleet.hpp"

#include <fmt/core.h>

namespace mlplat::transport {

Fleet::Fleet(std::vector<Endpoint> endpoints, FleetOptions options)
  : m_endpoints(std::move(endpoints)), m_options(options), m_labels(m_endpoints.size())
{
}

Fleet::~Fleet() = default;

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

bool Fleet::record(size_t host, const Command& planned)
{
  if (m_options.dry_run != DryRun::yes || planned.effect != Effect::mutating) {
    return false;
  }
  std::lock_guard lock(m_plan_mutex);
  m_plan.push_back({m_endpoints[host].name, planned.description, planned.sensitive == Sensitive::yes ? std::string() : planned.script,
                    m_labels[host], planned.sensitive == Sensitive::yes});
  return true;
}

Result<ExecResult> Fleet::exec(size_t host, const Command& cmd)
{
  if (record(host, cmd)) {
    return planned_success();
  }
  return send(host, cmd, false);
}

Result<ExecResult> Fleet::run(size_t host, const Command& cmd)
{
  if (record(host, cmd)) {
    return planned_success();
  }
  return send(host, cmd, true);
}

Status Fleet::upload_bytes(size_t host, const std::string& data, const std::string& remote_path, unsigned mode, Privilege privilege)
{
  if (record(host, planned_upload(fmt::format("upload {} ({} bytes, mode {:04o})", remote_path, data.size(), mode)))) {
    return {};
  }
  return send_bytes(host, data, remote_path, mode, privilege);
}

Status Fleet::upload_file(size_t host, const std::filesystem::path& local, const std::string& remote_path, unsigned mode,
                          Privilege privilege)
{
  std::error_code ec;
  const auto size = std::filesystem::file_size(local, ec);
  if (record(host, planned_upload(fmt::format("upload {} ({} bytes, mode {:04o}) from {}", remote_path, ec ? 0 : size, mode, local.string())))) {
    return {};
  }
  return send_file(host, local, remote_path, mode, privilege);
}

std::vector<PlannedCommand> Fleet::plan() const
{
  std::lock_guard lock(m_plan_mutex);
  return m_plan;
}

// --- SshFleet ---

SshFleet::SshFleet(std::vector<Endpoint> endpoints, FleetOptions options)
  : Fleet(std::move(endpoints), options),
    m_backoff(options.connect_backoff),
    m_sessions(size()),
    m_host_mutex(new std::mutex[size()]),
    m_opened(new std::atomic<int>[size()]()),
    m_attempts(new std::atomic<int>[size()]()),
    m_first_failure(size())
{
}

SshFleet::~SshFleet() = default;

Result<Session*> SshFleet::session(size_t host)
{
  if (!m_sessions[host]) {
    if (m_opened[host] == 0 && m_first_failure[host]) {
      return tl::unexpected(*m_first_failure[host]);
    }
    int attempts = 0;
    auto s = Session::connect_with_retry(endpoint(host), m_backoff, &attempts);
    m_attempts[host] += attempts;
    if (!s) {
      if (m_opened[host] == 0 && s.error().code != ErrorCode::interrupted) {
        m_first_failure[host] = s.error();
      }
      return tl::unexpected(s.error());
    }
    ++m_opened[host];
    m_sessions[host] = std::move(*s);
  }
  return m_sessions[host].get();
}

template<typename T, typename Fn> Result<T> SshFleet::with_session(size_t host, Fn&& fn)
{
  std::lock_guard lock(m_host_mutex[host]);
  TRY_ASSIGN(Session * s, session(host));
  Result<T> result = fn(*s);
  if (!result && result.error().code == ErrorCode::connect_failed) {
    m_sessions[host].reset();
  }
  return result;
}

Status SshFleet::connect(size_t host)
{
  return with_session<bool>(host, [](Session&) -> Result<bool> { return true; }).map([](bool) {});
}

Result<ExecResult> SshFleet::send(size_t host, const Command& cmd, bool fail_on_exit)
{
  return with_session<ExecResult>(host, [&](Session& s) { return fail_on_exit ? s.run(cmd) : s.exec(cmd); });
}

Status SshFleet::send_bytes(size_t host, const std::string& data, const std::string& remote_path, unsigned mode, Privilege privilege)
{
  return with_session<bool>(host, [&](Session& s) -> Result<bool> {
           TRY(s.upload_bytes(data, remote_path, mode, privilege));
           return true;
         })
    .map([](bool) {});
}

Status SshFleet::send_file(size_t host, const std::filesystem::path& local, const std::string& remote_path, unsigned mode,
                           Privilege privilege)
{
  return with_session<bool>(host, [&](Session& s) -> Result<bool> {
           TRY(s.upload_file(local, remote_path, mode, privilege));
           return true;
         })
    .map([](bool) {});
}

} // namespace mlplat::transport
