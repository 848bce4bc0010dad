// The install engine without hosts: phase order, check/apply/verify, the journal making a rerun a
// no-op and a `once` step never applied twice, resuming after a failure, --only/--skip, dry-run.
#include "support/catch.hpp"

#include "support/fake_fleet.hpp"
#include "workflow/engine.hpp"
#include "workflow/steps.hpp"
#include "util/process.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>

using namespace mlplat;
namespace sfs = std::filesystem;

namespace {

// A world of hosts whose "state" is a set of applied step names; steps are applied to it.
struct World {
  std::mutex mutex;
  std::map<std::string, std::set<std::string>> applied;  // host -> steps in effect
  std::vector<std::string> log;                          // "apply host step" in the order they ran
  std::string fail_apply;                                // "host/step" that fails once
  std::string fail_verify;
  int applies = 0;
};

testing::FakeFleet fake_fleet(size_t n)
{
  std::vector<std::string> names;
  for (size_t i = 0; i < n; ++i) {
    names.push_back("h" + std::to_string(i));
  }
  return testing::FakeFleet(names);
}

workflow::Step step(World& w, transport::Fleet& fleet, const std::string& name, bool once = false)
{
  workflow::Step s;
  s.name = name;
  s.digest = "d-" + name;
  s.once = once;
  s.check = [&w, &fleet, name](size_t h) -> Result<bool> {
    std::lock_guard lock(w.mutex);
    return w.applied[fleet.endpoint(h).name].count(name) != 0;
  };
  s.apply = [&w, &fleet, name](size_t h) -> Status {
    std::lock_guard lock(w.mutex);
    const std::string host = fleet.endpoint(h).name;
    if (w.fail_apply == host + "/" + name) {
      w.fail_apply.clear();
      return fail(ErrorCode::failed, "disk full on /var (planted)");
    }
    ++w.applies;
    w.log.push_back("apply " + host + " " + name);
    w.applied[host].insert(name);
    return {};
  };
  s.verify = [&w, &fleet, name](size_t h) -> Status {
    std::lock_guard lock(w.mutex);
    if (w.fail_verify == fleet.endpoint(h).name + "/" + name) {
      return fail(ErrorCode::failed, "node not Ready within 120 s (planted)");
    }
    return {};
  };
  return s;
}

std::vector<workflow::Phase> phases(World& w, transport::Fleet& fleet)
{
  workflow::Phase prepare{"prepare", "sysctls and packages", {0, 1, 2}, false,
                         [&](size_t) { return std::vector<workflow::Step>{step(w, fleet, "sysctl"), step(w, fleet, "containerd")}; }};
  workflow::Phase init{"init", "kubeadm init", {0}, false,
                      [&](size_t) { return std::vector<workflow::Step>{step(w, fleet, "kubeadm-init", true)}; }};
  workflow::Phase join{"join", "join workers", {1, 2}, true,
                      [&](size_t) { return std::vector<workflow::Step>{step(w, fleet, "kubeadm-join", true)}; }};
  return {prepare, init, join};
}

sfs::path fresh_dir(const std::string& name)
{
  const auto dir = sfs::temp_directory_path() / ("mlplat-engine-" + name + "-" + std::to_string(::getpid()));
  sfs::remove_all(dir);
  REQUIRE(state::prepare_dir(dir));
  return dir;
}

workflow::RunOptions quiet()
{
  workflow::RunOptions o;
  o.progress = Terminal::no;
  return o;
}

} // namespace

TEST_CASE("phases run in order, every step checked, applied, verified and journalled, a rerun applies nothing", "[install]")
{
  World w;
  auto fleet = fake_fleet(3);
  const auto dir = fresh_dir("order");
  auto journal = state::Journal::open(dir, "c");
  REQUIRE(journal);
  auto first = workflow::run(phases(w, fleet), *journal, fleet, quiet());
  INFO((first ? "" : first.error().render()));
  REQUIRE(first);
  CHECK(first->applied() == 9); // 3 hosts x 2 prepare steps, 1 init, 2 joins
  // init after every prepare step, joins after init and one at a time in host order
  const auto pos = [&](const std::string& entry) { return std::find(w.log.begin(), w.log.end(), entry) - w.log.begin(); };
  CHECK(pos("apply h0 kubeadm-init") > pos("apply h2 containerd"));
  CHECK(pos("apply h1 kubeadm-join") > pos("apply h0 kubeadm-init"));
  CHECK(pos("apply h2 kubeadm-join") == pos("apply h1 kubeadm-join") + 1);
  CHECK(journal->steps().size() == 9);

  auto again = state::Journal::open(dir, "c");
  auto second = workflow::run(phases(w, fleet), *again, fleet, quiet());
  REQUIRE(second);
  CHECK(second->applied() == 0);
  CHECK(w.applies == 9);
  sfs::remove_all(dir);
}

TEST_CASE("a once step in the journal is never applied again, even when its check says otherwise", "[install]")
{
  World w;
  auto fleet = fake_fleet(3);
  const auto dir = fresh_dir("once");
  auto journal = state::Journal::open(dir, "c");
  REQUIRE(workflow::run(phases(w, fleet), *journal, fleet, quiet()));
  // The host lost the evidence the check looks at; the journal still says init happened.
  w.applied["h0"].erase("kubeadm-init");
  w.applied["h0"].erase("sysctl"); // an idempotent step drifted: it is applied again
  auto rerun = workflow::run(phases(w, fleet), *journal, fleet, quiet());
  REQUIRE(rerun);
  CHECK(rerun->applied() == 1);
  CHECK(std::count(w.log.begin(), w.log.end(), "apply h0 kubeadm-init") == 1);
  CHECK(std::count(w.log.begin(), w.log.end(), "apply h0 sysctl") == 2);
  sfs::remove_all(dir);
}

TEST_CASE("a failed step stops the run naming host, phase and step, the rerun continues where it stopped", "[install]")
{
  World w;
  auto fleet = fake_fleet(3);
  const auto dir = fresh_dir("resume");
  auto journal = state::Journal::open(dir, "c");
  w.fail_apply = "h2/kubeadm-join";
  auto failed = workflow::run(phases(w, fleet), *journal, fleet, quiet());
  REQUIRE_FALSE(failed);
  CHECK(failed.error().host == "h2");
  CHECK(failed.error().message == "join / kubeadm-join: apply failed: disk full on /var (planted)");
  CHECK(w.applies == 8);
  // a new process: the journal from disk
  auto reopened = state::Journal::open(dir, "c");
  auto resumed = workflow::run(phases(w, fleet), *reopened, fleet, quiet());
  REQUIRE(resumed);
  CHECK(resumed->applied() == 1);
  CHECK(std::count(w.log.begin(), w.log.end(), "apply h0 kubeadm-init") == 1);
  CHECK(w.applies == 9);
  sfs::remove_all(dir);
}

TEST_CASE("a step whose verify fails is not journalled", "[install]")
{
  World w;
  auto fleet = fake_fleet(3);
  const auto dir = fresh_dir("verify");
  auto journal = state::Journal::open(dir, "c");
  w.fail_verify = "h1/kubeadm-join";
  auto r = workflow::run(phases(w, fleet), *journal, fleet, quiet());
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("join / kubeadm-join: verify failed: node not Ready within 120 s") == 0);
  CHECK_FALSE(journal->done("join", "kubeadm-join", "h1", "d-kubeadm-join"));
  CHECK(journal->done("init", "kubeadm-init", "h0", "d-kubeadm-init"));
  sfs::remove_all(dir);
}

TEST_CASE("phase selection: --only and --skip take phase names, an unknown one is a usage error with the names", "[install]")
{
  World w;
  auto fleet = fake_fleet(3);
  const auto dir = fresh_dir("only");
  auto journal = state::Journal::open(dir, "c");
  auto o = quiet();
  o.only = {"prepare"};
  auto r = workflow::run(phases(w, fleet), *journal, fleet, o);
  REQUIRE(r);
  CHECK(r->applied() == 6);
  o.only.clear();
  o.skip = {"join"};
  REQUIRE(workflow::run(phases(w, fleet), *journal, fleet, o));
  CHECK(w.applied["h1"].count("kubeadm-join") == 0);
  CHECK(w.applied["h0"].count("kubeadm-init") == 1);
  o.skip = {"jion"};
  auto bad = workflow::run(phases(w, fleet), *journal, fleet, o);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == ErrorCode::usage);
  CHECK(bad.error().fix.find("did you mean 'join'?") == 0);
  sfs::remove_all(dir);
}

TEST_CASE("dry-run checks, plans the applies, and writes no journal", "[install]")
{
  World w;
  auto fleet = fake_fleet(3);
  const auto dir = fresh_dir("dry");
  auto journal = state::Journal::open(dir, "c");
  auto o = quiet();
  o.dry_run = true;
  auto r = workflow::run(phases(w, fleet), *journal, fleet, o);
  REQUIRE(r);
  CHECK(r->applied() == 9);
  CHECK(journal->steps().empty());
  CHECK_FALSE(sfs::exists(dir / "journal.json"));
  sfs::remove_all(dir);
}

TEST_CASE("a wait step's script parses and says what it waited for, whatever the words (quotes, parentheses)", "[install]")
{
  std::vector<transport::Endpoint> eps(1);
  eps[0].name = "h0";
  eps[0].address = "192.0.2.1"; // never connected: dry-run records the mutating apply
  transport::FleetOptions options;
  options.dry_run = transport::DryRun::yes;
  transport::SshFleet fleet(eps, options);
  const std::string what = "the Tigera operator's rollout (deployment \"tigera-operator\"; $HOME `id`)";
  auto s = workflow::wait_step(fleet, "operator-ready", what, "false", std::chrono::seconds(1));
  REQUIRE(s.apply(0));
  const auto plan = fleet.plan();
  REQUIRE(plan.size() == 1);
  // Run for real (the condition never holds): it gives up after its deadline with those words.
  const auto r = run_process({"sh", "-c", plan[0].script}, std::chrono::seconds(20));
  REQUIRE(r);
  CHECK(r->exit_code == 1);
  CHECK(r->err == "waited 1 s for " + what + "\n");
}
