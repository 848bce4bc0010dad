// `mlplat certs rotate`: the ingress certificate reissued (or the provided one again) into the
// gateway's Secret, through the same prelude and the same platform/tls phase as install.
#include "commands/commands.hpp"

#include "fetch/probe.hpp"
#include "phases/phases.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/interrupt.hpp"

#include <fmt/core.h>

#include <cctype>
#include <iostream>
#include <thread>

namespace mlplat::commands {

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

Result<std::string> served_serial(const render::PlatformRender& render, const std::filesystem::path& ca_file)
{
  if (render.ingress_address.empty()) {
    return fail(ErrorCode::failed, "the gateway's address is not in the cluster file (a load balancer's)");
  }
  auto q = render::gateway_request(render, render.ingress_address, ca_file);
  q.timeout = std::chrono::seconds(5);
  TRY_ASSIGN(const auto reply, fetch::get(q));
  return reply.peer_serial;
}

namespace {

// The new certificate first, on this machine, under the cluster lock: a provided one is validated
// before the Secret is touched.
Status issue(workflow::Context& ctx)
{
  ctx.render = render::ingress_endpoint(ctx.cluster, ctx.effective, ctx.first_control_plane);
  const bool self_signed = ctx.cluster.ingress.tls.mode == config::TlsMode::self_signed;
  auto previous = fs::read_file(ctx.state_dir / "tls" / "server.crt");
  TRY_ASSIGN(ctx.cert, tls::ingress_certificate(ctx.cluster, *ctx.render, ctx.state_dir, true, self_signed));
  log::info("ingress certificate serial {}{}", ctx.cert->serial_hex, previous && self_signed ? " (reissued from the stored CA)" : "");
  return {};
}

// The gateway picks the Secret up by itself; waits (bounded) until it serves the new serial.
int wait_for_gateway(workflow::Context& ctx, int wait_seconds, const workflow::Ui& ui)
{
  const auto& render = *ctx.render;
  const auto& cert = *ctx.cert;
  const std::string wanted = serial_key(cert.serial_hex);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(wait_seconds);
  Result<std::string> served = fail(ErrorCode::failed, "not asked yet");
  while (wait_seconds > 0) {
    served = served_serial(render, cert.ca_file);
    if ((served && *served == wanted) || std::chrono::steady_clock::now() >= end) {
      break;
    }
    if (!interrupt::sleep_for(std::chrono::seconds(1))) {
      return ui.error(fail(ErrorCode::interrupted, fmt::format("interrupted while waiting for the gateway to serve serial {}", wanted)).value());
    }
  }
  std::cout << fmt::format("Secret {}/{} now holds certificate serial {}\n", render::k_gateway_namespace, render::k_tls_secret, cert.serial_hex);
  if (wait_seconds > 0) {
    if (!served || *served != wanted) {
      Error e;
      e.code = ErrorCode::deadline;
      e.message = fmt::format("waited {} s for the gateway at {} to serve serial {}: {}", wait_seconds, render::ui_url(render), wanted,
                              served ? "it serves " + *served : served.error().message);
      e.fix = "check the gateway's log: kubectl -n istio-system logs deployment/istio-ingressgateway; or skip the wait with --wait 0";
      return ui.error(e);
    }
    std::cout << fmt::format("the gateway at {} serves it\n", render::ui_url(render));
  }
  return k_exit_ok;
}

} // namespace

workflow::CommandSpec certs_rotate(int wait_seconds)
{
  workflow::CommandSpec spec;
  spec.name = "certs rotate";
  spec.matrix_gate = false;
  spec.doctor = false;
  // The Secret is rotated whatever the cluster file says of Pipelines now: the gateway may serve it.
  auto tls = phases::tls();
  tls.skip_if = nullptr;
  spec.phases = {tls};
  // Issued only while this run holds the cluster: the local locks and the lock on the first control
  // plane (a provided certificate is still validated before any change on a host).
  spec.before_hosts = issue;
  spec.before_hosts_under_lock = true;
  spec.after = [wait_seconds](workflow::Context& ctx, const workflow::Summary&, double, const workflow::Ui& ui) {
    return wait_for_gateway(ctx, wait_seconds, ui);
  };
  return spec;
}

} // namespace mlplat::commands
