// `mlplat certs show` and `mlplat certs rotate`: the ingress certificate and its CA.
#include "app/commands.hpp"
#include "app/internal.hpp"

#include "config/load.hpp"
#include "config/profile.hpp"
#include "fetch/probe.hpp"
#include "install/engine.hpp"
#include "install/platform.hpp"
#include "install/remote_lock.hpp"
#include "state/state.hpp"
#include "tls/tls.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

#include <fmt/chrono.h>
#include <fmt/core.h>

#include <iostream>
#include <thread>

namespace mlplat::app {

namespace {

struct Context {
  config::Cluster cluster;
  std::filesystem::path dir;
  install::PlatformRender ingress;
  size_t first_cp = 0;
};

Result<Context> load_context(const GlobalOptions& global, const CertsOptions& options)
{
  Context c;
  TRY_ASSIGN(c.cluster, config::load_file(global.config));
  c.dir = options.state_dir.empty() ? state::default_dir(c.cluster.name) : std::filesystem::path(options.state_dir);
  c.first_cp = c.cluster.first_control_plane();
  TRY_ASSIGN(const auto profile, config::load_profile(c.cluster.profile));
  c.ingress = install::ingress_endpoint(c.cluster, config::effective(c.cluster, profile), c.first_cp);
  return c;
}

std::string describe(const std::string& what, const std::string& pem)
{
  auto info = tls::inspect(pem);
  if (!info) {
    return fmt::format("{}: unreadable ({})\n", what, info.error().message);
  }
  const auto left = std::chrono::duration_cast<std::chrono::hours>(info->not_after - std::chrono::system_clock::now()).count() / 24;
  std::vector<std::string> names = info->dns_names;
  names.insert(names.end(), info->ips.begin(), info->ips.end());
  return fmt::format("{}\n  subject    {}\n  serial     {}\n  key        {}\n  not after  {:%Y-%m-%d %H:%M} UTC ({} days left{})\n{}", what,
                     info->subject, info->serial_hex, info->key_type, fmt::gmtime(std::chrono::system_clock::to_time_t(info->not_after)),
                     left, left < 30 ? ": rotate it" : "", names.empty() ? "" : "  names      " + text::join(names, ", ") + "\n");
}

// The serial the gateway serves now, or why it could not be read.
Result<std::string> served_serial(const Context& c, const std::filesystem::path& ca_file)
{
  if (c.ingress.ingress_address.empty()) {
    return fail(ErrorCode::failed, "the gateway's address is not in the cluster file (a load balancer's)");
  }
  auto q = install::gateway_request(c.ingress, c.ingress.ingress_address, ca_file);
  q.timeout = std::chrono::seconds(5);
  TRY_ASSIGN(const auto reply, fetch::get(q));
  return reply.peer_serial;
}

// A serial as fetch::get reports it: lowercase hex, no colons.
std::string serial_key(const std::string& hex)
{
  std::string out;
  for (const char ch : hex) {
    if (ch != ':') {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
  }
  return out;
}

} // namespace

int cmd_certs_show(const GlobalOptions& global, const CertsOptions& options)
{
  auto c = load_context(global, options);
  if (!c) {
    return report_error(global, c.error());
  }
  std::filesystem::path cert_file, ca_file;
  if (c->cluster.ingress.tls.mode == config::TlsMode::provided) {
    cert_file = c->cluster.ingress.tls.cert_file;
    ca_file = c->cluster.ingress.tls.ca_file;
  } else {
    cert_file = c->dir / "tls" / "server.crt";
    ca_file = c->dir / "tls" / "ca.crt";
  }
  auto cert = fs::read_file(cert_file);
  if (!cert) {
    Error e = cert.error();
    e.fix = "install first (mlplat install issues the ingress certificate), or give --state-dir";
    return report_error(global, e);
  }
  std::cout << describe(fmt::format("ingress certificate ({}, {})", cert_file.string(),
                                    c->cluster.ingress.tls.mode == config::TlsMode::provided ? "provided" : "issued by mlplat"),
                        *cert);
  if (!ca_file.empty()) {
    if (auto ca = fs::read_file(ca_file)) {
      std::cout << describe(fmt::format("CA ({}; its key {})", ca_file.string(),
                                        c->cluster.ingress.tls.mode == config::TlsMode::provided ? "is not mlplat's"
                                                                                                : (c->dir / "tls" / "ca.key").string() + ", 0600"),
                            *ca);
    }
  }
  if (options.live) {
    auto served = served_serial(*c, ca_file);
    const auto info = tls::inspect(*cert);
    if (!served) {
      std::cout << fmt::format("served at {}: not reachable ({})\n", install::ui_url(c->ingress), served.error().message);
      return k_exit_failed;
    }
    const bool same = info && serial_key(info->serial_hex) == *served;
    std::cout << fmt::format("served at {} (via {}): serial {} ({})\n", install::ui_url(c->ingress), c->ingress.ingress_address, *served,
                             same ? "this certificate" : "NOT this certificate: run mlplat certs rotate, or install");
    return same ? k_exit_ok : k_exit_failed;
  }
  return k_exit_ok;
}

int cmd_certs_rotate(const GlobalOptions& global, const CertsOptions& options)
{
  auto c = load_context(global, options);
  if (!c) {
    return report_error(global, c.error());
  }
  if (auto prepared = state::prepare_dir(c->dir); !prepared) {
    return report_error(global, prepared.error());
  }
  auto lock = state::Lock::acquire(c->dir, "certs rotate");
  if (!lock) {
    return report_error(global, lock.error());
  }
  auto journal = state::Journal::open(c->dir, c->cluster.name);
  if (!journal) {
    return report_error(global, journal.error());
  }
  // The new certificate first, on this machine: a provided one is validated before any host is touched.
  auto previous = fs::read_file(c->dir / "tls" / "server.crt");
  auto cert = install::ingress_certificate(c->cluster, c->ingress, c->dir, true, c->cluster.ingress.tls.mode == config::TlsMode::self_signed);
  if (!cert) {
    return report_error(global, cert.error());
  }
  log::info("ingress certificate serial {}{}", cert->serial_hex,
            previous && c->cluster.ingress.tls.mode == config::TlsMode::self_signed ? " (reissued from the stored CA)" : "");

  transport::FleetOptions fleet_options;
  fleet_options.concurrency = global.concurrency;
  transport::Fleet fleet(endpoints(c->cluster), fleet_options);
  const std::string holder = lock->holder() + " on machine " + install::machine_id();
  if (auto locked = install::acquire_remote_lock(fleet, c->first_cp, c->cluster.name, holder); !locked) {
    return report_error(global, locked.error());
  }
  install::RuntimeInputs in;
  in.first_control_plane = c->first_cp;
  const std::vector<install::Phase> phases{install::tls_phase(fleet, *cert, in)};
  auto summary = install::run(phases, *journal, fleet, {});
  (void)install::release_remote_lock(fleet, c->first_cp, c->cluster.name, holder);
  if (!summary) {
    return report_error(global, summary.error());
  }
  // The gateway picks the Secret up by itself; wait (bounded) until it serves the new serial.
  const std::string wanted = serial_key(cert->serial_hex);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(options.wait_seconds);
  Result<std::string> served = fail(ErrorCode::failed, "not asked yet");
  while (options.wait_seconds > 0) {
    served = served_serial(*c, cert->ca_file);
    if ((served && *served == wanted) || std::chrono::steady_clock::now() >= end) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  std::cout << fmt::format("Secret {}/{} now holds certificate serial {}\n", install::k_gateway_namespace, install::k_tls_secret, cert->serial_hex);
  if (options.wait_seconds > 0) {
    if (!served || *served != wanted) {
      Error e;
      e.code = ErrorCode::deadline;
      e.message = fmt::format("waited {} s for the gateway at {} to serve serial {}: {}", options.wait_seconds, install::ui_url(c->ingress), wanted,
                              served ? "it serves " + *served : served.error().message);
      e.fix = "check the gateway's log: kubectl -n istio-system logs deployment/istio-ingressgateway; or skip the wait with --wait 0";
      return report_error(global, e);
    }
    std::cout << fmt::format("the gateway at {} serves it\n", install::ui_url(c->ingress));
  }
  return k_exit_ok;
}

} // namespace mlplat::app
