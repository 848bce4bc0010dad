#include "workflow/steps.hpp"

#include "util/sha256.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

#include <filesystem>
#include <set>

namespace mlplat::workflow {

using transport::Command;
using transport::Effect;
using transport::Privilege;

Command read_only(std::string description, std::string script, std::string input)
{
  Command c;
  c.description = std::move(description);
  c.script = std::move(script);
  c.privilege = Privilege::root;
  c.effect = Effect::read_only;
  c.deadline = std::chrono::seconds(60);
  if (!input.empty()) {
    c.input = transport::input_from_string(std::move(input));
  }
  return c;
}

Command mutating(std::string description, std::string script)
{
  Command c = read_only(std::move(description), std::move(script));
  c.effect = Effect::mutating;
  c.deadline = std::chrono::seconds(600);
  return c;
}

Result<bool> converged(transport::Fleet& fleet, size_t host, const Command& check)
{
  TRY_ASSIGN(const auto r, fleet.exec(host, check));
  if (r.exit_status == 0 || r.exit_status == 1) {
    return r.exit_status == 0;
  }
  return fail(ErrorCode::failed, fmt::format("'{}' failed ({}): {}", check.description, r.status_text(), text::trim(r.err)));
}

Step files_step(transport::Fleet& fleet, std::string name, std::vector<FileSpec> files, std::string after)
{
  // Each file compared by its sha256 and mode: a check reads and never writes.
  std::string script = "set -u\n";
  std::string digest_text;
  for (const auto& f : files) {
    script += fmt::format("[ -f {0} ] && [ \"$(sha256sum < {0} | cut -d' ' -f1)\" = {1} ] && [ \"$(stat -c %a {0})\" = {2:o} ] || exit 1\n",
                          text::shell_quote(f.path), sha256_hex(f.content), f.mode);
    digest_text += f.path + "\n" + f.content;
  }
  script += "exit 0\n";
  Step s;
  s.name = name;
  s.digest = sha256_hex(digest_text);
  auto check = [script, name] { return read_only(fmt::format("check the files of {}", name), script); };
  s.check = [&fleet, check](size_t h) { return converged(fleet, h, check()); };
  s.apply = [&fleet, files, after, name](size_t h) -> Status {
    std::set<std::string> dirs;
    for (const auto& f : files) {
      dirs.insert(std::filesystem::path(f.path).parent_path().string());
    }
    TRY(fleet.run(h, mutating(fmt::format("create the directories of {}", name),
                              "mkdir -p " + text::shell_join({dirs.begin(), dirs.end()}))));
    for (const auto& f : files) {
      TRY(fleet.upload_bytes(h, f.content, f.path, f.mode, Privilege::root));
    }
    if (!after.empty()) {
      TRY(fleet.run(h, mutating(fmt::format("after writing the files of {}", name), after)));
    }
    return {};
  };
  s.verify = [&fleet, check, name](size_t h) -> Status {
    TRY_ASSIGN(const bool ok, converged(fleet, h, check()));
    return ok ? Status{} : fail(ErrorCode::failed, fmt::format("the files of {} differ from what was written", name));
  };
  return s;
}

Step script_step(transport::Fleet& fleet, std::string name, std::string digest, std::string check_description,
                 std::string check_script, std::string apply_description, std::string apply_script, ScriptOptions options)
{
  Step s;
  s.name = name;
  s.digest = std::move(digest);
  auto check = [check_description, check_script, options] {
    auto c = read_only(check_description, check_script);
    c.sensitive = options.sensitive;
    return c;
  };
  s.check = [&fleet, check](size_t h) { return converged(fleet, h, check()); };
  s.apply = [&fleet, apply_description, apply_script, options](size_t h) -> Status {
    auto c = mutating(apply_description, apply_script);
    c.sensitive = options.sensitive;
    c.deadline = options.apply_deadline;
    TRY(fleet.run(h, c));
    return {};
  };
  s.verify = [&fleet, check, check_description](size_t h) -> Status {
    TRY_ASSIGN(const bool ok, converged(fleet, h, check()));
    return ok ? Status{} : fail(ErrorCode::failed, fmt::format("after it was applied: {} still fails", check_description));
  };
  return s;
}

Step wait_step(transport::Fleet& fleet, std::string name, std::string what, std::string condition, std::chrono::seconds deadline,
               WaitDiagnosis diagnosis)
{
  const std::string check = fmt::format("if {}; then exit 0; fi\nexit 1\n", condition);
  const std::string wait = fmt::format(
    "end=$(( $(date +%s) + {secs} ))\n"
    "until {cond}; do\n"
    "  if [ \"$(date +%s)\" -ge \"$end\" ]; then echo {said} >&2; exit 1; fi\n"
    "  sleep 2\n"
    "done\n",
    fmt::arg("secs", deadline.count()), fmt::arg("cond", condition),
    fmt::arg("said", text::shell_quote(fmt::format("waited {} s for {}", deadline.count(), what))));
  ScriptOptions options;
  options.apply_deadline = deadline + std::chrono::seconds(30);
  Step s = script_step(fleet, std::move(name), sha256_hex(condition), "check: " + what, check,
                       fmt::format("wait up to {} s for {}", deadline.count(), what), wait, options);
  if (diagnosis.diagnose.empty()) {
    return s;
  }
  s.apply = [&fleet, wait = s.apply, diagnosis](size_t h) -> Status {
    auto r = wait(h);
    if (r || fleet.dry_run()) {
      return r;
    }
    TRY_ASSIGN(const auto found, fleet.exec(h, read_only(diagnosis.label, diagnosis.diagnose)));
    Error e = r.error();
    e.message += fmt::format(" ({}: {})", diagnosis.label, text::trim(found.out));
    e.fix = diagnosis.fix;
    return tl::unexpected(e);
  };
  return s;
}

std::string kubectl()
{
  // Its discovery cache in mlplat's own directory, not in root's home.
  return fmt::format("kubectl --kubeconfig {} --cache-dir={}", k_admin_kubeconfig, k_kubectl_cache_dir);
}

Step apply_step(transport::Fleet& fleet, std::string name, std::string remote_path, std::optional<std::string> content)
{
  const std::string path = text::shell_quote(remote_path);
  std::string check;
  if (content) {
    check = fmt::format("[ -f {0} ] && [ \"$(sha256sum < {0} | cut -d' ' -f1)\" = {1} ] || exit 1\n", path, sha256_hex(*content));
  }
  check += fmt::format("{} diff --server-side --force-conflicts -f {} >/dev/null 2>&1 || exit 1\nexit 0\n", kubectl(), path);
  Step s;
  s.name = name;
  s.digest = sha256_hex(remote_path + "\n" + content.value_or(""));
  auto check_cmd = [check, name] { return read_only(fmt::format("check that {} is applied as written", name), check); };
  // Right after an apply, the controllers' first writes (a Deployment's revision annotation, an
  // operator's status) can land between the live read and the dry run of `kubectl diff`, which then
  // shows a change nobody asked for: the verify asks again, up to 10 times a second apart.
  auto verify_cmd = [check, name] {
    auto c = read_only(fmt::format("check that {} is applied as written (10 tries, 1 s apart, while the controllers settle)", name),
                       fmt::format("i=0\nwhile [ $i -lt 10 ]; do\n  ( {} ) && exit 0\n  i=$((i + 1)); sleep 1\ndone\nexit 1\n", check));
    c.deadline = std::chrono::seconds(120);
    return c;
  };
  s.check = [&fleet, check_cmd](size_t h) { return converged(fleet, h, check_cmd()); };
  s.apply = [&fleet, remote_path, path, content, name](size_t h) -> Status {
    if (content) {
      const std::string dir = std::filesystem::path(remote_path).parent_path().string();
      TRY(fleet.run(h, mutating(fmt::format("create {} (0700)", dir), fmt::format("mkdir -p {0} && chmod 0700 {0}", text::shell_quote(dir)))));
      TRY(fleet.upload_bytes(h, *content, remote_path, 0600, transport::Privilege::root));
    }
    auto c = mutating(fmt::format("apply {}", name), fmt::format("{} apply --server-side --force-conflicts -f {}", kubectl(), path));
    c.deadline = std::chrono::seconds(300);
    TRY(fleet.run(h, c));
    return {};
  };
  s.verify = [&fleet, verify_cmd, name](size_t h) -> Status {
    TRY_ASSIGN(const bool ok, converged(fleet, h, verify_cmd()));
    return ok ? Status{} : fail(ErrorCode::failed, fmt::format("{} was applied, but kubectl diff still finds changes", name));
  };
  return s;
}

ControlPlane::ControlPlane(transport::Fleet& fleet, size_t host) : m_fleet(fleet), m_host(host) {}

Result<transport::ExecResult> ControlPlane::exec(const transport::Command& cmd)
{
  return m_fleet.exec(m_host, cmd);
}

Result<transport::ExecResult> ControlPlane::run(const transport::Command& cmd)
{
  return m_fleet.run(m_host, cmd);
}

} // namespace mlplat::workflow
