// The CLI's helpers that need no host: "did you mean" and the completion scripts over a CLI11 tree,
// the confirmation of destructive commands, the per-run log file's name.
#include "support/catch.hpp"

#include "app/cli_tree.hpp"
#include "app/internal.hpp"
#include "app/run_log.hpp"

#include <poll.h>
#include <pty.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <string>

using namespace mlplat;

namespace {

bool contains(const std::string& haystack, const std::string& needle)
{
  return haystack.find(needle) != std::string::npos;
}

// A tree shaped like mlplat's: global flags, commands, a group with subcommands.
void build(CLI::App& app, std::string& s, int& n, bool& b)
{
  app.fallthrough();
  app.add_option("-c,--config", s, "file");
  app.add_flag("--yes", b, "yes");
  auto* install = app.add_subcommand("install", "install");
  install->add_option("--bundle", s, "bundle");
  install->add_flag("--allow-preview", b, "preview");
  auto* certs = app.add_subcommand("certs", "certs");
  certs->require_subcommand(1);
  certs->add_subcommand("show", "show")->add_flag("--live", b, "live");
  certs->add_subcommand("rotate", "rotate")->add_option("--wait", n, "seconds");
  app.add_subcommand("bundle", "bundle")->add_subcommand("verify", "verify")->add_option("bundle", s, "path");
}

// A pseudo-terminal: `slave` is what confirm() reads and writes, `master` the operator's side.
struct Pty {
  int master = -1, slave = -1;
  Pty()
  {
    REQUIRE(::openpty(&master, &slave, nullptr, nullptr, nullptr) == 0);
    // No echo: the master then reads only what confirm() writes.
    termios t{};
    REQUIRE(::tcgetattr(slave, &t) == 0);
    t.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL);
    REQUIRE(::tcsetattr(slave, TCSANOW, &t) == 0);
  }
  ~Pty()
  {
    ::close(master);
    ::close(slave);
  }
  // What confirm() wrote, read until 0.3 s pass without more.
  std::string read_master()
  {
    std::string out;
    pollfd p{master, POLLIN, 0};
    char buf[256];
    while (::poll(&p, 1, 300) == 1) {
      const ssize_t n = ::read(master, buf, sizeof buf);
      if (n <= 0) {
        break;
      }
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
};

} // namespace

TEST_CASE("edit distance counts insertions, deletions, substitutions and swaps of neighbours", "[app]")
{
  CHECK(app::edit_distance("install", "install") == 0);
  CHECK(app::edit_distance("instal", "install") == 1);
  CHECK(app::edit_distance("bundel", "bundle") == 1); // a swap is one edit
  CHECK(app::edit_distance("rotat", "rotate") == 1);
  CHECK(app::edit_distance("", "abc") == 3);
  CHECK(app::edit_distance("kitten", "sitting") == 3);
  CHECK(app::closest("--bundel", {"--bundle", "--bundle-url", "--only"}) == "--bundle");
  CHECK(app::closest("doc", {"doctor", "init"}) == "doctor"); // the only command it begins
  CHECK(app::closest("zzz", {"doctor", "init"}).empty());
  CHECK(app::closest("x", {"y"}).empty());
}

TEST_CASE("did you mean: the closest command or flag at any level of the CLI11 tree, also a command registered last", "[app]")
{
  CLI::App app{"test", "prog"};
  std::string s;
  int n = 0;
  bool b = false;
  build(app, s, n, b);
  CHECK(app::did_you_mean(app, {"instal"}) == "unknown command 'instal' for 'prog': did you mean 'install'?");
  CHECK(app::did_you_mean(app, {"-c", "f.yaml", "certs", "rotat"}) == "unknown command 'rotat' for 'prog certs': did you mean 'rotate'?");
  CHECK(app::did_you_mean(app, {"install", "--bundel", "b.tar"}) == "unknown flag '--bundel' for 'prog install': did you mean '--bundle'?");
  // Global flags are known after the command (fallthrough), and their values are not commands.
  CHECK(app::did_you_mean(app, {"install", "--config", "instal", "--yse"}) == "unknown flag '--yse' for 'prog install': did you mean '--yes'?");
  CHECK(app::did_you_mean(app, {"certs", "rotate", "--wait=5", "--wiat"}) == "unknown flag '--wiat' for 'prog certs rotate': did you mean '--wait'?");
  CHECK(app::did_you_mean(app, {"zzz"}) == "unknown command 'zzz' for 'prog'; 'prog --help' lists them");
  // A positional argument is not an unknown command; every word known: nothing to say.
  CHECK(app::did_you_mean(app, {"bundle", "verify", "instal"}).empty());
  CHECK(app::did_you_mean(app, {"install", "--bundle", "x"}).empty());
  // A command registered after the others is found by the same walk.
  app.add_subcommand("remove-node", "later");
  CHECK(app::did_you_mean(app, {"remove-nod"}) == "unknown command 'remove-nod' for 'prog': did you mean 'remove-node'?");
}

TEST_CASE("completion scripts carry every command, subcommand and flag of the CLI11 tree, also a command registered last", "[app]")
{
  CLI::App app{"test", "prog"};
  std::string s;
  int n = 0;
  bool b = false;
  build(app, s, n, b);
  app.add_subcommand("reset", "later")->add_flag("--force", b, "force");
  const auto bash = app::completion_script(app, "bash");
  CHECK(contains(bash, "['prog']='install certs bundle reset'"));
  CHECK(contains(bash, "['prog certs']='show rotate'"));
  CHECK(contains(bash, "['prog certs rotate']='-h --help --wait -c --config --yes'")); // its own flags, then the global ones, once each
  CHECK(contains(bash, "['prog reset']='-h --help --force -c --config --yes'"));
  CHECK(contains(bash, "['prog install']='--bundle -c --config'")); // the flags that take a value
  CHECK(contains(bash, "complete -F _prog_complete prog"));
  const auto zsh = app::completion_script(app, "zsh");
  CHECK(zsh.rfind("#compdef prog\n", 0) == 0);
  CHECK(contains(zsh, "['prog certs']='show rotate'"));
  CHECK(contains(zsh, "compdef _prog_complete prog"));
}

TEST_CASE("confirm: --yes goes ahead unasked, a terminal asks y/N, no terminal without --yes is a usage error (exit 2)", "[app]")
{
  app::GlobalOptions global;
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  REQUIRE(::write(fds[1], "yes\n", 4) == 4);
  const auto piped = app::confirm(global, "remove node-3 from cluster c", fds[0], fds[0]);
  REQUIRE_FALSE(piped);
  CHECK(piped.error().code == ErrorCode::usage);
  CHECK(exit_code_for(piped.error()) == 2);
  CHECK(contains(piped.error().fix, "--yes"));
  char left[8] = {};
  CHECK(::read(fds[0], left, sizeof left) == 4); // nothing was read from a non-terminal
  global.yes = true;
  CHECK(app::confirm(global, "remove node-3 from cluster c", fds[0], fds[0]));
  ::close(fds[0]);
  ::close(fds[1]);

  global.yes = false;
  for (const auto& [answer, ok] : std::vector<std::pair<std::string, bool>>{{"y\n", true}, {" YES \n", true}, {"n\n", false}, {"\n", false}, {"yess\n", false}}) {
    Pty pty;
    REQUIRE(::write(pty.master, answer.data(), answer.size()) == static_cast<ssize_t>(answer.size()));
    const auto r = app::confirm(global, "reset cluster c", pty.slave, pty.slave);
    INFO("answer: " << answer);
    CHECK(static_cast<bool>(r) == ok);
    if (!r) {
      CHECK(r.error().code == ErrorCode::failed);
      CHECK(contains(r.error().message, "not confirmed; nothing was changed"));
    }
    CHECK(contains(pty.read_master(), "reset cluster c [y/N] "));
  }
}

TEST_CASE("a run's log file is named by its UTC start (ISO 8601, to the millisecond) and its command", "[app]")
{
  const auto at = std::chrono::system_clock::time_point(std::chrono::milliseconds(1796188200123)); // 2026-12-02T05:10:00.123Z
  CHECK(app::run_log_name("install", at) == "20261202T051000.123Z-install.log");
  CHECK(app::run_log_name("certs rotate", at) == "20261202T051000.123Z-certs-rotate.log");
}
