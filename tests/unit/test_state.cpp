// The local state: the journal that makes install resumable, and the lock that keeps two runs apart.
#include "support/catch.hpp"

#include "state/runs.hpp"
#include "state/state.hpp"
#include "util/fs.hpp"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

using namespace mlplat;
namespace sfs = std::filesystem;

namespace {

sfs::path fresh_dir(const std::string& name)
{
  const auto dir = sfs::temp_directory_path() / ("mlplat-state-" + name + "-" + std::to_string(::getpid())) / "cluster";
  sfs::remove_all(dir.parent_path());
  REQUIRE(state::prepare_dir(dir));
  return dir;
}

unsigned mode_of(const sfs::path& p)
{
  struct stat st{};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

} // namespace

TEST_CASE("the journal records finished steps atomically, 0600 in a 0700 directory, and survives a reopen", "[state]")
{
  const auto dir = fresh_dir("journal");
  CHECK(mode_of(dir) == 0700);
  auto j = state::Journal::open(dir, "c1");
  REQUIRE(j);
  CHECK(j->steps().empty());
  CHECK_FALSE(j->done("init", "kubeadm-init", "cp-1", "d1"));
  REQUIRE(j->record("init", "kubeadm-init", "cp-1", "d1"));
  REQUIRE(j->record("prepare", "sysctl", "w-1", "d2"));
  CHECK(mode_of(dir / "journal.json") == 0600);

  auto again = state::Journal::open(dir, "c1");
  REQUIRE(again);
  CHECK(again->done("init", "kubeadm-init", "cp-1", "d1"));
  CHECK_FALSE(again->done("init", "kubeadm-init", "cp-1", "d-changed")); // changed inputs: run it again
  CHECK_FALSE(again->done("init", "kubeadm-init", "cp-2", "d1"));
  // re-recording replaces, never duplicates
  REQUIRE(again->record("init", "kubeadm-init", "cp-1", "d3"));
  CHECK(again->steps().size() == 2);
  REQUIRE(again->forget_phase("prepare"));
  CHECK(state::Journal::open(dir, "c1")->steps().size() == 1);
  // no temporary file is left beside it
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : sfs::directory_iterator(dir)) {
    ++files;
  }
  CHECK(files == 1);
  sfs::remove_all(dir.parent_path());
}

TEST_CASE("a journal that cannot be read is an error and is left as it is", "[state]")
{
  const auto dir = fresh_dir("corrupt");
  REQUIRE(fs::write_file_atomic(dir / "journal.json", "{\"format\": 1, \"cluster\": \"c1\", \"steps\": [", 0600));
  auto j = state::Journal::open(dir, "c1");
  REQUIRE_FALSE(j);
  CHECK(j.error().message.find("journal.json cannot be read") != std::string::npos);
  CHECK(j.error().fix.find("kubeadm init") != std::string::npos);
  CHECK(*fs::read_file(dir / "journal.json") == "{\"format\": 1, \"cluster\": \"c1\", \"steps\": [");
  // another cluster's journal is refused too
  REQUIRE(fs::write_file_atomic(dir / "journal.json", R"({"format": 1, "cluster": "other", "steps": []})", 0600));
  auto other = state::Journal::open(dir, "c1");
  REQUIRE_FALSE(other);
  CHECK(other.error().message.find("belongs to cluster 'other'") != std::string::npos);
  sfs::remove_all(dir.parent_path());
}

TEST_CASE("the lock refuses a second holder at once (exit 6) naming the first, and dies with its process", "[state]")
{
  const auto dir = fresh_dir("lock");
  {
    auto first = state::Lock::acquire(dir, "install");
    REQUIRE(first);
    CHECK(mode_of(dir / "lock") == 0600);
    const auto start = std::chrono::steady_clock::now();
    auto second = state::Lock::acquire(dir, "install");
    REQUIRE_FALSE(second);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));
    CHECK(second.error().code == ErrorCode::locked);
    CHECK(exit_code_for(second.error()) == 6);
    CHECK(second.error().message.find("pid " + std::to_string(::getpid())) != std::string::npos);
    CHECK(second.error().message.find("'install'") != std::string::npos);
  }
  // released with its holder
  REQUIRE(state::Lock::acquire(dir, "install"));

  // A holder killed with SIGKILL leaves no stale lock: the kernel releases it.
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    auto held = state::Lock::acquire(dir, "child");
    (void)::write(ready[1], held ? "y" : "n", 1);
    ::pause();
    ::_exit(0);
  }
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  CHECK(c == 'y');
  auto while_held = state::Lock::acquire(dir, "install");
  REQUIRE_FALSE(while_held);
  CHECK(while_held.error().message.find("pid " + std::to_string(child)) != std::string::npos);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  CHECK(state::Lock::acquire(dir, "install"));
  ::close(ready[0]);
  ::close(ready[1]);
  sfs::remove_all(dir.parent_path());
}

TEST_CASE("the record of runs keeps the last ones, oldest first, and refuses a file that is not one", "[state]")
{
  const auto dir = fresh_dir("runs");
  REQUIRE(fs::ensure_private_dir(dir));
  CHECK(state::read_runs(dir)->empty());
  for (int i = 0; i < int(state::k_runs_kept) + 3; ++i) {
    REQUIRE(state::append_run(dir, {"install", "2026-12-02T05:00:00Z", "2026-12-02T05:01:00Z", i, "/l/" + std::to_string(i) + ".log"}));
  }
  const auto runs = state::read_runs(dir);
  REQUIRE(runs);
  REQUIRE(runs->size() == state::k_runs_kept);
  CHECK(runs->front().exit_code == 3);
  CHECK(runs->back().exit_code == int(state::k_runs_kept) + 2);
  CHECK(runs->back().log_file == "/l/" + std::to_string(state::k_runs_kept + 2) + ".log");
  struct stat st{};
  REQUIRE(::stat((dir / "runs.json").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(fs::write_file_atomic(dir / "runs.json", "{\"runs\": 5}", 0600));
  const auto bad = state::read_runs(dir);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("runs.json: not a record of runs") != std::string::npos);
}
