#include "state/state.hpp"

#include "util/fs.hpp"
#include "util/sha256.hpp"

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
    if (doc.contains("hosts")) { // absent in journals written before identities were recorded
      for (const auto& [host, h] : doc.at("hosts").items()) {
        j.m_identities[host] = h.at("identity").get<std::string>();
      }
    }
  } catch (const std::exception& e) {
    return fail(ErrorCode::config_invalid, fmt::format("{} cannot be read: {}", j.m_file.string(), e.what()),
                "keep the file (it records what install already did, such as kubeadm init); move it aside only after "
                "checking the hosts with mlplat doctor and the cluster on its first control plane (kubectl --kubeconfig "
                "/etc/kubernetes/admin.conf get nodes): install then checks every step on the hosts again");
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

Status Journal::forget_hosts(const std::set<std::string>& hosts)
{
  m_steps.erase(std::remove_if(m_steps.begin(), m_steps.end(), [&](const Step& s) { return hosts.count(s.host) != 0; }), m_steps.end());
  return save();
}

std::string Journal::identity(const std::string& host) const
{
  const auto it = m_identities.find(host);
  return it == m_identities.end() ? std::string() : it->second;
}

Result<bool> Journal::adopt_identity(const std::string& host, const std::string& identity, bool persist)
{
  const std::string known = this->identity(host);
  if (known == identity) {
    return false;
  }
  const bool changed = !known.empty();
  if (changed) {
    m_steps.erase(std::remove_if(m_steps.begin(), m_steps.end(), [&](const Step& s) { return s.host == host; }), m_steps.end());
  }
  m_identities[host] = identity;
  if (persist) {
    TRY(save());
  }
  return changed;
}

Status Journal::save() const
{
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& s : m_steps) {
    steps.push_back({{"phase", s.phase}, {"name", s.name}, {"host", s.host}, {"digest", s.digest}, {"at", s.at}});
  }
  nlohmann::json hosts = nlohmann::json::object();
  for (const auto& [host, identity] : m_identities) {
    hosts[host] = {{"identity", identity}};
  }
  const nlohmann::json doc{{"format", 1}, {"cluster", m_cluster}, {"hosts", hosts}, {"steps", steps}};
  return fs::write_file_atomic(m_file, doc.dump(2) + "\n", 0600);
}

sfs::path machine_lock_dir()
{
  if (const char* d = std::getenv("MLPLAT_LOCK_DIR"); d != nullptr && *d != 0) {
    return d;
  }
  if (::access("/run/lock", W_OK | X_OK) == 0) {
    return "/run/lock";
  }
  std::error_code ec;
  const auto tmp = sfs::temp_directory_path(ec);
  return ec ? sfs::path("/tmp") : tmp;
}

Result<Lock> Lock::acquire_cluster(const std::string& cluster, const std::string& first_control_plane, const sfs::path& state_dir,
                                   const std::string& command)
{
  const sfs::path dir = machine_lock_dir();
  std::error_code ec;
  sfs::create_directories(dir, ec);
  if (ec) {
    return fail(ErrorCode::io, fmt::format("cannot create the lock directory {}: {}", dir.string(), ec.message()),
                "set MLPLAT_LOCK_DIR to a directory this user may write");
  }
  // The name keeps to the characters of a cluster name; the hash tells two clusters of one name apart.
  const sfs::path file = dir / fmt::format("mlplat-{}-{}.lock", cluster, sha256_hex(cluster + "\n" + first_control_plane).substr(0, 12));
  return lock_file(file, fmt::format("'{}', state directory {}", command, state_dir.string()), 0644);
}

Result<Lock> Lock::acquire(const sfs::path& dir, const std::string& command)
{
  return lock_file(dir / "lock", fmt::format("'{}'", command), 0600);
}

Result<Lock> Lock::lock_file(const sfs::path& file, const std::string& what, unsigned mode)
{
  // O_NOFOLLOW: the machine's lock directory is shared (sticky /run/lock); a planted link is refused.
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode);
  bool writable = true;
  if (fd < 0 && errno == EACCES) { // another user's lock file: it still locks, its holder stays theirs
    fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    writable = false;
  }
  if (fd < 0) {
    return fail(ErrorCode::io, fmt::format("cannot open {}: {}", file.string(), std::strerror(errno)),
                "check the file's owner and type (it must be a regular file), or set MLPLAT_LOCK_DIR");
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
  const std::string holder = fmt::format("pid {} ({}@{}, {}, since {})\n", ::getpid(), user != nullptr ? user : "?", host,
                                         what, now_utc());
  if (!writable) {
    return Lock(fd, holder.substr(0, holder.size() - 1));
  }
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
