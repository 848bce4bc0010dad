#include "workflow/remote_lock.hpp"

#include "workflow/steps.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

namespace mlplat::workflow {

namespace {

// The holder line travels on stdin (it holds quotes and spaces), never in the script.
transport::Command lock_command(std::string description, std::string script, const std::string& holder)
{
  auto c = mutating(std::move(description), std::move(script));
  c.deadline = std::chrono::seconds(30);
  c.input = transport::input_from_string(holder + "\n");
  return c;
}

} // namespace

std::string machine_id()
{
  auto id = fs::read_file("/etc/machine-id");
  return id ? std::string(text::trim(*id)) : std::string("unknown");
}

Result<bool> acquire_remote_lock(transport::Fleet& fleet, size_t host, const std::string& cluster, const std::string& holder,
                                 RemoteLockTiming timing, bool only_if_present)
{
  const std::string script = fmt::format(
    "set -eu\n"
    "{absent}"
    "read -r me\n"
    "read -r machine\n"
    "d={dir}; f=$d/{cluster}.lock\n"
    "mkdir -p \"$d\"; chmod 0700 \"$d\"\n"
    "exec 9>>\"$d/.guard\"\n"
    "flock -w 5 9 || {{ echo 'another run is taking the lock right now' >&2; exit 6; }}\n"
    "now=$(date +%s)\n"
    "if [ -f \"$f\" ]; then\n"
    "  holder=$(sed -n 's/^holder=//p' \"$f\")\n"
    "  beat=$(stat -c %Y \"$f.beat\" 2>/dev/null || echo 0)\n"
    "  age=$((now - beat))\n"
    // A holder on this operator machine is gone: this run holds the machine's local lock.
    "  case \"$holder\" in *\" on machine $machine\") [ \"$holder\" = \"$me\" ] || age=999999 ;; esac\n"
    "  if [ \"$holder\" != \"$me\" ]; then\n"
    "    if [ \"$age\" -lt {stale} ]; then echo \"held by $holder, heartbeat $age s ago\" >&2; exit 6; fi\n"
    "    if [ \"$age\" -eq 999999 ]; then echo \"stale: $holder, a run of this machine that ended without releasing it\"\n"
    "    else echo \"stale: $holder, no heartbeat for $age s\"; fi\n"
    "  fi\n"
    "fi\n"
    "id=$(cat /proc/sys/kernel/random/uuid)\n"
    "printf 'holder=%s\\nid=%s\\n' \"$me\" \"$id\" > \"$f.tmp\"; chmod 0600 \"$f.tmp\"; mv -f \"$f.tmp\" \"$f\"\n"
    "touch \"$f.beat\"\n"
    // The sshd process of this connection: the heartbeat lives as long as it does.
    "p=$$\n"
    "while [ \"$p\" -gt 1 ] && [ \"$(cat /proc/$p/comm 2>/dev/null)\" != sshd ]; do p=$(awk '{{print $4}}' /proc/$p/stat); done\n"
    "[ \"$p\" -gt 1 ] || {{ echo 'no sshd process above this command: cannot keep a heartbeat' >&2; exit 2; }}\n"
    "exec 9>&-\n" // the guard is for taking the lock only: nothing started here may keep it
    "systemd-run --quiet --collect --unit \"mlplat-lock-{cluster}-$$\" /bin/sh -c "
    "\"while kill -0 $p 2>/dev/null && grep -qx 'id=$id' '$f'; do touch '$f.beat'; sleep {beat}; done\"\n",
    fmt::arg("dir", k_remote_lock_dir), fmt::arg("cluster", cluster), fmt::arg("stale", timing.stale.count()),
    fmt::arg("beat", timing.beat.count()),
    fmt::arg("absent", only_if_present ? "[ -d /var/lib/mlplat ] || { echo absent; exit 0; }\n" : ""));
  fleet.set_label(host, "lock");
  TRY_ASSIGN(const auto r, fleet.exec(host, lock_command("take the cluster lock on the first control plane", script,
                                                         holder + "\n" + machine_id())));
  if (r.exit_status == 6) {
    Error e;
    e.code = ErrorCode::locked;
    e.host = fleet.endpoint(host).name;
    e.message = fmt::format("the cluster is locked by another run: {}", text::trim(r.err));
    e.fix = fmt::format("wait for it to finish, or stop it; its lock ({}/{}.lock) is taken over once its heartbeat is {} s old",
                        k_remote_lock_dir, cluster, timing.stale.count());
    return tl::unexpected(std::move(e));
  }
  if (!r.ok()) {
    return fail(ErrorCode::failed, fmt::format("{}: taking the cluster lock failed ({}): {}", fleet.endpoint(host).name, r.status_text(),
                                               text::trim(r.err)));
  }
  const std::string said(text::trim(r.out));
  if (said == "absent") {
    return false;
  }
  if (said.rfind("stale: ", 0) == 0) {
    log::warn("{}: took over a stale cluster lock ({})", fleet.endpoint(host).name, said.substr(7));
  }
  return true;
}

Status release_remote_lock(transport::Fleet& fleet, size_t host, const std::string& cluster, const std::string& holder, bool remove_empty)
{
  const std::string script = fmt::format(
    "read -r me\nd={0}; f=$d/{1}.lock\n"
    "if [ -f \"$f\" ] && grep -qxF \"holder=$me\" \"$f\"; then rm -f \"$f\" \"$f.beat\"; fi\n"
    "{2}",
    k_remote_lock_dir, cluster,
    remove_empty ? "if [ -d \"$d\" ] && [ -z \"$(ls -A \"$d\" | grep -vx .guard)\" ]; then rm -f \"$d/.guard\"; rmdir \"$d\"; fi\n"
                   "if [ -d /var/lib/mlplat ] && [ -z \"$(ls -A /var/lib/mlplat)\" ]; then rmdir /var/lib/mlplat; fi\n"
                 : "");
  fleet.set_label(host, "lock");
  auto release = lock_command("release the cluster lock", script, holder);
  release.runs_after_interrupt = true; // Ctrl-C releases it too
  release.deadline = std::chrono::seconds(4);
  TRY(fleet.run(host, release));
  return {};
}

} // namespace mlplat::workflow
