#include "workflow/engine.hpp"

#include "util/interrupt.hpp"
#include "util/log.hpp"
#include "util/parallel.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <mutex>

namespace mlplat::workflow {

size_t Summary::applied() const
{
  size_t n = 0;
  for (const auto& s : steps) {
    n += s.what == StepOutcome::What::applied || s.what == StepOutcome::What::planned ? 1 : 0;
  }
  return n;
}

bool names_phase(const std::string& name, const Phase& phase)
{
  return name == phase.path() || name == phase.name || (!phase.group.empty() && name == phase.group);
}

Status validate_selection(const std::vector<Phase>& phases, const RunOptions& options)
{
  std::vector<std::string> names;     // the paths, listed in the error
  std::vector<std::string> accepted;  // what the closest name is chosen from: paths, last parts, groups
  for (const auto& p : phases) {
    names.push_back(p.path());
    accepted.push_back(p.path());
    accepted.push_back(p.name);
    if (!p.group.empty()) {
      accepted.push_back(p.group);
    }
  }
  for (const auto* set : {&options.only, &options.skip}) {
    for (const auto& name : *set) {
      if (std::none_of(phases.begin(), phases.end(), [&](const Phase& p) { return names_phase(name, p); })) {
        const auto guess = text::did_you_mean(name, accepted);
        return fail(ErrorCode::usage, fmt::format("{}: no phase named '{}'", set == &options.only ? "--only" : "--skip", name),
                    guess ? fmt::format("did you mean '{}'? phases: {}", *guess, text::join(names, ", "))
                          : "phases: " + text::join(names, ", "));
      }
    }
  }
  return {};
}

std::string deselected(const Phase& phase, const RunOptions& options)
{
  const auto named = [&](const std::set<std::string>& set) {
    return std::any_of(set.begin(), set.end(), [&](const std::string& n) { return names_phase(n, phase); });
  };
  if (named(options.skip)) {
    return "--skip";
  }
  if (!options.only.empty() && !named(options.only)) {
    return "not in --only";
  }
  return {};
}

namespace {

Error step_error(const Phase& phase, const Step& step, const std::string& host, const std::string& stage, const Error& cause)
{
  Error e = cause;
  e.host = host;
  e.message = fmt::format("{} / {}: {} failed: {}", phase.name, step.name, stage, cause.message);
  return e;
}

// The steps of one phase on one host; records outcomes under `mutex`.
Status run_host(const Phase& phase, size_t host, state::Journal& journal, transport::Fleet& fleet, const RunOptions& options,
                std::mutex& mutex, Summary& summary)
{
  const std::string name = fleet.endpoint(host).name;
  for (const auto& step : phase.steps(host)) {
    if (interrupt::requested()) {
      return fail(ErrorCode::interrupted, fmt::format("{} / {}: interrupted before it started", phase.name, step.name));
    }
    fleet.set_label(host, phase.name + "/" + step.name);
    bool recorded = false;
    {
      std::lock_guard lock(mutex);
      recorded = journal.done(phase.name, step.name, name, step.digest);
    }
    auto outcome = [&](StepOutcome::What what) {
      std::lock_guard lock(mutex);
      summary.steps.push_back({phase.name, step.name, name, what});
    };
    if (recorded && step.once) {
      log::debug("{}: {} / {}: done in an earlier run (journal)", name, phase.name, step.name);
      outcome(StepOutcome::What::journal);
      continue;
    }
    auto converged = step.check(host);
    if (!converged) {
      return tl::unexpected(step_error(phase, step, name, "check", converged.error()));
    }
    if (*converged) {
      outcome(StepOutcome::What::already);
      if (!recorded && !options.dry_run) {
        std::lock_guard lock(mutex);
        TRY(journal.record(phase.name, step.name, name, step.digest));
      }
      continue;
    }
    if (auto applied = step.apply(host); !applied) {
      return tl::unexpected(step_error(phase, step, name, "apply", applied.error()));
    }
    if (options.dry_run) {
      outcome(StepOutcome::What::planned);
      continue;
    }
    if (step.verify) {
      if (auto verified = step.verify(host); !verified) {
        return tl::unexpected(step_error(phase, step, name, "verify", verified.error()));
      }
    }
    {
      std::lock_guard lock(mutex);
      TRY(journal.record(phase.name, step.name, name, step.digest));
      summary.steps.push_back({phase.name, step.name, name, StepOutcome::What::applied});
    }
    log::debug("{}: {} / {}: applied", name, phase.name, step.name);
  }
  return {};
}

} // namespace

Result<Summary> run(const std::vector<Phase>& phases, state::Journal& journal, transport::Fleet& fleet, const RunOptions& options)
{
  TRY(validate_selection(phases, options));
  Summary summary;
  std::mutex mutex;
  for (const auto& phase : phases) {
    if (const auto why = deselected(phase, options); !why.empty()) {
      log::debug("phase {}: skipped ({})", phase.path(), why);
      summary.skipped.push_back({phase.path(), why});
      continue;
    }
    if (!phase.skipped.empty()) {
      log::info("phase {}: skipped ({})", phase.path(), phase.skipped);
      summary.skipped.push_back({phase.path(), phase.skipped});
      continue;
    }
    if (interrupt::requested()) {
      return fail(ErrorCode::interrupted, fmt::format("interrupted before phase {}", phase.name));
    }
    std::vector<std::string> names;
    for (size_t h : phase.hosts) {
      names.push_back(fleet.endpoint(h).name);
    }
    log::info("phase {}: {} ({} host{})", phase.name, phase.summary, phase.hosts.size(), phase.hosts.size() == 1 ? "" : "s");
    std::vector<Error> failures;
    {
      Progress progress(phase.name, names, phase.deadline, options.progress);
      auto one = [&](size_t k) {
        auto s = run_host(phase, phase.hosts[k], journal, fleet, options, mutex, summary);
        std::string outcome = s ? "done" : "failed";
        if (s && options.dry_run) {
          // A plan did nothing: it says what would change on the host, never "done".
          std::lock_guard lock(mutex);
          const std::string& host = fleet.endpoint(phase.hosts[k]).name;
          const auto n = std::count_if(summary.steps.begin(), summary.steps.end(), [&](const StepOutcome& o) {
            return o.phase == phase.name && o.host == host && o.what == StepOutcome::What::planned;
          });
          outcome = n == 0 ? "nothing would change" : fmt::format("{} step{} would change", n, n == 1 ? "" : "s");
        }
        progress.done(k, outcome);
        if (!s) {
          std::lock_guard lock(mutex);
          failures.push_back(s.error());
        }
      };
      if (phase.serial) {
        for (size_t k = 0; k < phase.hosts.size() && failures.empty(); ++k) {
          one(k);
        }
      } else {
        // In batches when the phase says so: each batch in parallel, the next only after it succeeded.
        const size_t batch = phase.batch == 0 ? phase.hosts.size() : phase.batch;
        for (size_t first = 0; first < phase.hosts.size() && failures.empty(); first += batch) {
          const size_t n = std::min(batch, phase.hosts.size() - first);
          if (phase.batch != 0) {
            log::info("phase {}: hosts {} to {} of {}", phase.name, first + 1, first + n, phase.hosts.size());
          }
          parallel_for(n, fleet.concurrency(), [&](size_t k) { one(first + k); });
        }
      }
    }
    if (!failures.empty()) {
      if (failures.size() == 1) {
        return tl::unexpected(failures.front());
      }
      // The code they share, a host-key stop if any, else partial (docs/exit-codes.md).
      Error e;
      e.code = ErrorCode::partial;
      e.message = fmt::format("phase {} failed on {} hosts", phase.name, failures.size());
      e.fix = "fix what each host reports and run the command again: finished steps are not repeated";
      e.children = std::move(failures);
      return tl::unexpected(std::move(e));
    }
  }
  return summary;
}

} // namespace mlplat::workflow
