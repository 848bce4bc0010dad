#include "util/log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <vector>

namespace mlplat::log {

namespace {

struct State {
  std::mutex mutex;
  Level stderr_level = Level::info;
  int file_fd = -1;
  std::vector<std::string> secrets;
};

State& state()
{
  static State s;
  return s;
}

const char* level_name(Level level)
{
  switch (level) {
  case Level::debug: return "debug";
  case Level::info: return "info";
  case Level::warn: return "warning";
  case Level::error: return "error";
  }
  return "?";
}

std::string redact_locked(const State& s, std::string_view text)
{
  std::string out(text);
  for (const auto& secret : s.secrets) {
    for (auto pos = out.find(secret); pos != std::string::npos; pos = out.find(secret, pos)) {
      out.replace(pos, secret.size(), "[redacted]");
      pos += std::strlen("[redacted]");
    }
  }
  return out;
}

void write_all(int fd, std::string_view data)
{
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

} // namespace

void set_stderr_level(Level level)
{
  std::lock_guard lock(state().mutex);
  state().stderr_level = level;
}

bool open_file(const std::string& path, std::string& error)
{
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0600);
  if (fd < 0) {
    error = std::strerror(errno);
    return false;
  }
  ::fchmod(fd, 0600); // O_CREAT does not change the mode of an existing file
  std::lock_guard lock(state().mutex);
  if (state().file_fd >= 0) {
    ::close(state().file_fd);
  }
  state().file_fd = fd;
  return true;
}

void add_secret_lines(std::string_view pem)
{
  size_t pos = 0;
  while (pos < pem.size()) {
    const size_t end = std::min(pem.find('\n', pos), pem.size());
    const auto line = pem.substr(pos, end - pos);
    if (line.size() >= 16 && line.rfind("-----", 0) != 0) {
      add_secret(line);
    }
    pos = end + 1;
  }
}

void add_secret(std::string_view secret)
{
  if (secret.size() < 4) {
    return;
  }
  std::lock_guard lock(state().mutex);
  auto& secrets = state().secrets;
  if (std::find(secrets.begin(), secrets.end(), secret) == secrets.end()) {
    secrets.emplace_back(secret);
    // Longest first, so a secret containing another is replaced whole.
    std::sort(secrets.begin(), secrets.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  }
}

std::string redact(std::string_view text)
{
  std::lock_guard lock(state().mutex);
  return redact_locked(state(), text);
}

void write(Level level, std::string_view host, std::string_view message)
{
  auto& s = state();
  std::lock_guard lock(s.mutex);
  const std::string body = redact_locked(s, message);
  std::string prefix = host.empty() ? std::string() : fmt::format("{}: ", host);
  if (level >= s.stderr_level) {
    const std::string line = level >= Level::warn ? fmt::format("mlplat: {}: {}{}\n", level_name(level), prefix, body)
                                                  : fmt::format("{}{}\n", prefix, body);
    write_all(STDERR_FILENO, line);
  }
  if (s.file_fd >= 0) {
    // ISO 8601 in UTC, to the millisecond: 2026-12-02T02:30:01.123Z.
    const auto now = std::chrono::system_clock::now();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    write_all(s.file_fd, fmt::format("{}.{:03d}Z {:7} {}{}\n", stamp, static_cast<int>(ms % 1000), level_name(level), prefix, body));
  }
}

} // namespace mlplat::log
