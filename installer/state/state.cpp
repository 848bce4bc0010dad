#include "state/state.hpp"

#include "util/fs.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>

namespace mlplat::state {

namespace sfs = std::filesystem;

namespace {

std::string now_utc()
{
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

} // namespace

sfs::path default_dir(const std::string& cluster)
{
  if (const char* d = std::getenv("MLPLAT_STATE_DIR"); d != nullptr && *d != 0) {
    return sfs::path(d) / cluster;
  }
  if (const char* x = std::getenv("XDG_STATE_HOME"); x != nullptr && *x != 0) {
    return sfs::path(x) / "mlplat" / cluster;
  }
  return sfs::path(fs::expand_home("~/.local/state/mlplat")) / cluster;
}

Status prepare_dir(const sfs::path& dir)
{
  return fs::ensure_private_dir(dir);
}

Result<Journal> Journal::open(const sfs::path& dir, const std::string& cluster)
{
  Journal j;
  j.m_file = dir / "journal.json";
  j.m_cluster = cluster;
  std::error_code ec;
  if (!sfs::exists(j.m_file, ec)) {
    return j;
  }
  TRY_ASSIGN(const std::string text, fs::read_file(j.m_file));
  try {
    const auto doc = nlohmann::json::parse(text);
    if (doc.at("format").get<int>() != 1) {
      return fail(ErrorCode::config_invalid, fmt::format("{}: journal format {} is not one this mlplat reads", j.m_file.string(),
                                                         doc.at("format").get<int>()),
                  "use the mlplat version that wrote it");
    }
    if (doc.at("cluster").get<std::string>() != cluster) {
      return fail(ErrorCode::config_invalid,
                  fmt::format("{} belongs to cluster '{}', not '{}'", j.m_file.string(), doc.at("cluster").get<std::string>(), cluster),
                  "check metadata.name in the cluster file, or --state-dir");
    }
    for (const auto& s : doc.at("steps")) {
      j.m_steps.push_back({s.at("phase"), s.at("name"), s.at("host"), s.at("digest"), s.at("at")});
    }
  } catch (const std::exception& e) {
    return fail(ErrorCode::config_invalid, fmt::format("{} cannot be read: {}", j.m_file.string(), e.what()),
                "keep the file (it records what install already did, such as kubeadm init); move it aside only after "
                "checking the cluster with mlplat status");
  }
  return j;
}

bool Journal::done(const std::string& phase, const std::string& name, const std::string& host, const std::string& digest) const
{
  return std::any_of(m_steps.begin(), m_steps.end(), [&](const Step& s) {
    return s.phase == phase && s.name == name && s.host == host && s.digest == digest;
  });
}

Status Journal::record(const std::string& phase, const std::string& name, const std::string& host, const std::string& digest)
{
  m_steps.erase(std::remove_if(m_steps.begin(), m_steps.end(),
                               [&](const Step& s) { return s.phase == phase && s.name == name && s.host == host; }),
                m_steps.end());
  m_steps.push_back({phase, name, host, digest, now_utc()});
  return save();
}

Status Journal::forget_phase(const std::string& phase)
{
  m_steps.erase(std::remove_if(m_steps.begin(), m_steps.end(), [&](const Step& s) { return s.phase == phase; }), m_steps.end());
  return save();
}

Status Journal::save() const
{
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& s : m_steps) {
    steps.push_back({{"phase", s.phase}, {"name", s.name}, {"host", s.host}, {"digest", s.digest}, {"at", s.at}});
  }
  const nlohmann::json doc{{"format", 1}, {"cluster", m_cluster}, {"steps", steps}};
  return fs::write_file_atomic(m_file, doc.dump(2) + "\n", 0600);
}

Result<Lock> Lock::acquire(const sfs::path& dir, const std::string& command)
{
  const sfs::path file = dir / "lock";
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return fail(ErrorCode::io, fmt::format("cannot open {}: {}", file.string(), std::strerror(errno)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder(512, '\0');
    const ssize_t n = ::pread(fd, holder.data(), holder.size(), 0);
    holder.resize(n > 0 ? size_t(n) : 0);
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == '\0')) {
      holder.pop_back();
    }
    ::close(fd);
    if (err != EWOULDBLOCK) {
      return fail(ErrorCode::io, fmt::format("cannot lock {}: {}", file.string(), std::strerror(err)));
    }
    Error e;
    e.code = ErrorCode::locked;
    e.message = fmt::format("the cluster is locked by another run: {}", holder.empty() ? "(holder unknown)" : holder);
    e.fix = "wait for it to finish, or stop it; the lock goes with its process (" + file.string() + ")";
    return tl::unexpected(std::move(e));
  }
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  const char* user = std::getenv("USER");
  const std::string holder = fmt::format("pid {} ({}@{}, '{}', since {})\n", ::getpid(), user != nullptr ? user : "?", host,
                                         command, now_utc());
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, holder.data(), holder.size(), 0) != ssize_t(holder.size())) {
    ::close(fd);
    return fail(ErrorCode::io, fmt::format("cannot write {}", file.string()));
  }
  return Lock(fd, holder.substr(0, holder.size() - 1));
}

Lock::Lock(Lock&& other) noexcept : m_fd(other.m_fd), m_holder(std::move(other.m_holder))
{
  other.m_fd = -1;
}

Lock::~Lock()
{
  if (m_fd >= 0) {
    ::close(m_fd); // releases the flock
  }
}

} // namespace mlplat::state
