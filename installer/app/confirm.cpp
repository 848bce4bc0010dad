// The confirmation of a destructive step: --yes, or a y/yes on a terminal.
#include "app/internal.hpp"

#include "util/log.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <string>

namespace mlplat::app {

namespace {

// One line from `fd` (without its newline), read byte by byte so nothing after it is consumed;
// false at end of input before any byte, or on an error.
bool read_line(int fd, std::string& line)
{
  line.clear();
  char c = 0;
  bool any = false;
  while (true) {
    const ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) {
      return false; // a signal (SIGINT) while waiting: not a yes
    }
    if (n <= 0) {
      return any;
    }
    any = true;
    if (c == '\n') {
      return true;
    }
    line += c;
  }
}

} // namespace

Status confirm(const GlobalOptions& global, const std::string& question, int in, int out)
{
  if (global.yes) {
    log::debug("confirmed by --yes: {}", question);
    return {};
  }
  if (::isatty(in) != 1 || ::isatty(out) != 1) {
    return fail(ErrorCode::usage, fmt::format("{}: needs a confirmation, and there is no terminal to ask on", question),
                "pass --yes to confirm without being asked (scripts, CI)");
  }
  const std::string prompt = question + " [y/N] ";
  for (size_t done = 0; done < prompt.size();) {
    const ssize_t n = ::write(out, prompt.data() + done, prompt.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return fail(ErrorCode::io, "cannot ask for a confirmation: writing to the terminal failed", "pass --yes to confirm without being asked");
    }
    done += static_cast<size_t>(n);
  }
  std::string answer;
  const bool got = read_line(in, answer);
  std::string word(text::trim(answer));
  for (char& c : word) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (got && (word == "y" || word == "yes")) {
    return {};
  }
  return fail(ErrorCode::failed, fmt::format("{}: not confirmed; nothing was changed", question),
              "answer y to go ahead, or pass --yes");
}

Status confirm(const GlobalOptions& global, const std::string& question)
{
  return confirm(global, question, STDIN_FILENO, STDERR_FILENO);
}

} // namespace mlplat::app
