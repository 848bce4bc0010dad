// `mlplat certs show`: the ingress certificate and its CA (rotate is in commands/certs_rotate.cpp).
#include "app/commands.hpp"
#include "app/internal.hpp"

#include "config/load.hpp"
#include "config/profile.hpp"
#include "fetch/probe.hpp"
#include "commands/commands.hpp"
#include "render/platform.hpp"
#include "state/state.hpp"
#include "tls/tls.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

#include <fmt/chrono.h>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <iostream>

namespace mlplat::app {

namespace {

struct Context {
  config::Cluster cluster;
  std::filesystem::path dir;
  render::PlatformRender ingress;
  size_t first_cp = 0;
};

Result<Context> load_context(const GlobalOptions& global, const CertsOptions& options)
{
  Context c;
  // show reads local files (and --live asks the gateway over HTTPS): no SSH key needed.
  TRY_ASSIGN(c.cluster, config::load_file(global.config, config::KeyFiles::skip));
  c.dir = options.state_dir.empty() ? state::default_dir(c.cluster.name) : std::filesystem::path(options.state_dir);
  c.first_cp = c.cluster.first_control_plane();
  TRY_ASSIGN(const auto profile, config::load_profile(c.cluster.profile));
  c.ingress = render::ingress_endpoint(c.cluster, config::effective(c.cluster, profile), c.first_cp);
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

} // namespace

namespace {

// One certificate as JSON (docs/schemas/certs-show.schema.json); an unreadable one names why.
nlohmann::json cert_json(const std::filesystem::path& file, const std::string& pem)
{
  nlohmann::json j{{"file", file.string()}};
  auto info = tls::inspect(pem);
  if (!info) {
    j["error"] = info.error().message;
    return j;
  }
  const auto left = std::chrono::duration_cast<std::chrono::hours>(info->not_after - std::chrono::system_clock::now()).count() / 24;
  std::vector<std::string> names = info->dns_names;
  names.insert(names.end(), info->ips.begin(), info->ips.end());
  j["subject"] = info->subject;
  j["serial"] = info->serial_hex;
  j["keyType"] = info->key_type;
  j["notAfter"] = fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(std::chrono::system_clock::to_time_t(info->not_after)));
  j["daysLeft"] = left;
  j["names"] = names;
  return j;
}

} // namespace

int cmd_certs_show(const GlobalOptions& global, const CertsOptions& options)
{
  auto c = load_context(global, options);
  if (!c) {
    return report_error(global, c.error());
  }
  const bool provided = c->cluster.ingress.tls.mode == config::TlsMode::provided;
  std::filesystem::path cert_file, ca_file;
  if (provided) {
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
  const bool json = global.output == Output::json;
  nlohmann::json doc{{"cluster", c->cluster.name}, {"mode", provided ? "provided" : "self-signed"}};
  doc["certificate"] = cert_json(cert_file, *cert);
  if (!json) {
    std::cout << describe(fmt::format("ingress certificate ({}, {})", cert_file.string(), provided ? "provided" : "issued by mlplat"), *cert);
  }
  if (!ca_file.empty()) {
    if (auto ca = fs::read_file(ca_file)) {
      doc["ca"] = cert_json(ca_file, *ca);
      if (!json) {
        std::cout << describe(fmt::format("CA ({}; its key {})", ca_file.string(),
                                          provided ? "is not mlplat's" : (c->dir / "tls" / "ca.key").string() + ", 0600"),
                              *ca);
      }
    }
  }
  int rc = k_exit_ok;
  if (options.live) {
    auto served = commands::served_serial(c->ingress, ca_file);
    const auto info = tls::inspect(*cert);
    nlohmann::json live{{"url", render::ui_url(c->ingress)}, {"address", c->ingress.ingress_address}};
    if (!served) {
      live["error"] = served.error().message;
      live["same"] = false;
      if (!json) {
        std::cout << fmt::format("served at {}: not reachable ({})\n", render::ui_url(c->ingress), served.error().message);
      }
      rc = k_exit_failed;
    } else {
      const bool same = info && commands::serial_key(info->serial_hex) == *served;
      live["servedSerial"] = *served;
      live["same"] = same;
      if (!json) {
        std::cout << fmt::format("served at {} (via {}): serial {} ({})\n", render::ui_url(c->ingress), c->ingress.ingress_address, *served,
                                 same ? "this certificate" : "NOT this certificate: run mlplat certs rotate, or install");
      }
      rc = same ? k_exit_ok : k_exit_failed;
    }
    doc["live"] = live;
  }
  if (json) {
    std::cout << doc.dump(2) << "\n";
  }
  return rc;
}

} // namespace mlplat::app
