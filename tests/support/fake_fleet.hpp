// A Fleet without hosts for unit tests: every command and upload that would reach a host is recorded
// (in order, with its host, effect and stdin) and answered by the test's responders; what nothing
// answers exits 1 (a check: not converged) or 0 (a change). Dry-run recording is the base class's,
// exactly as with SshFleet.
#pragma once

#include "transport/fleet.hpp"

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace mlplat::testing {

class FakeFleet final : public transport::Fleet {
public:
  // What reached a host.
  struct Sent {
    std::string host;
    std::string description;
    std::string script;        // the command, or for an upload its remote path
    std::string input;         // the command's stdin, or the upload's bytes
    transport::Effect effect = transport::Effect::read_only;
    bool upload = false;
    unsigned mode = 0;
  };
  // An answer for a command, or nullopt to leave it to the next responder.
  using Responder = std::function<std::optional<transport::ExecResult>(const std::string& host, const transport::Command& cmd)>;

  FakeFleet(const std::vector<std::string>& names, transport::FleetOptions options = {}) : Fleet(endpoints(names), options) {}

  // Answers commands whose script contains `needle` with `out` and exit status `status`.
  void answer(std::string needle, std::string out, int status = 0)
  {
    respond([needle = std::move(needle), out = std::move(out), status](const std::string&, const transport::Command& c)
              -> std::optional<transport::ExecResult> {
      if (c.script.find(needle) == std::string::npos) {
        return std::nullopt;
      }
      transport::ExecResult r;
      r.out = out;
      r.exit_status = status;
      return r;
    });
  }
  void respond(Responder r)
  {
    std::lock_guard lock(m_mutex);
    m_responders.push_back(std::move(r));
  }
  std::vector<Sent> sent() const
  {
    std::lock_guard lock(m_mutex);
    return m_sent;
  }
  Status connect(size_t) override { return {}; }

protected:
  Result<transport::ExecResult> send(size_t host, const transport::Command& cmd, bool fail_on_exit) override
  {
    Sent s{endpoint(host).name, cmd.description, cmd.script, drain(cmd), cmd.effect, false, 0};
    std::vector<Responder> responders;
    {
      std::lock_guard lock(m_mutex);
      m_sent.push_back(s);
      responders = m_responders;
    }
    transport::ExecResult r;
    r.exit_status = cmd.effect == transport::Effect::mutating ? 0 : 1;
    for (const auto& responder : responders) {
      if (auto answer = responder(s.host, cmd)) {
        r = *answer;
        break;
      }
    }
    if (fail_on_exit && r.exit_status != 0) {
      return fail(ErrorCode::failed, cmd.description + ": " + r.status_text());
    }
    return r;
  }
  Status send_bytes(size_t host, const std::string& data, const std::string& remote_path, unsigned mode, transport::Privilege) override
  {
    std::lock_guard lock(m_mutex);
    m_sent.push_back({endpoint(host).name, "upload " + remote_path, remote_path, data, transport::Effect::mutating, true, mode});
    return {};
  }
  Status send_file(size_t host, const std::filesystem::path& local, const std::string& remote_path, unsigned mode, transport::Privilege) override
  {
    std::lock_guard lock(m_mutex);
    m_sent.push_back({endpoint(host).name, "upload " + remote_path + " from " + local.string(), remote_path, {}, transport::Effect::mutating, true, mode});
    return {};
  }

private:
  mutable std::mutex m_mutex;
  std::vector<Sent> m_sent;
  std::vector<Responder> m_responders;

  static std::vector<transport::Endpoint> endpoints(const std::vector<std::string>& names)
  {
    std::vector<transport::Endpoint> out;
    for (size_t i = 0; i < names.size(); ++i) {
      transport::Endpoint ep;
      ep.name = names[i];
      ep.address = "192.0.2." + std::to_string(i + 10);  // documentation range: never connected
      out.push_back(ep);
    }
    return out;
  }
  static std::string drain(const transport::Command& cmd)
  {
    std::string out;
    if (cmd.input) {
      char buf[4096];
      for (size_t n; (n = cmd.input->read(buf, sizeof buf)) > 0;) {
        out.append(buf, n);
      }
    }
    return out;
  }
};

} // namespace mlplat::testing
