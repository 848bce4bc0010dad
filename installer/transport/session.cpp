#include "transport/session.hpp"

#include "config/model.hpp"
#include "util/fs.hpp"
#include "util/interrupt.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

#include <fmt/core.h>
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

namespace mlplat::transport {

namespace {

using Clock = std::chrono::steady_clock;

// Grace after a command's deadline before the client gives up on the host's own `timeout`.
constexpr auto k_deadline_grace = std::chrono::seconds(8);
// How long an interrupted command gets to end on the host (its traps run) before mlplat moves on.
constexpr auto k_interrupt_wait = std::chrono::seconds(1);
// Longest single log line taken from command output.
constexpr size_t k_max_log_line = 4096;

std::mutex g_known_hosts_mutex; // accept-new appends to one file from many threads

Error host_error(const Endpoint& ep, ErrorCode code, std::string message, std::string fix = {},
                 Retryable retryable = Retryable::no)
{
  Error e;
  e.code = code;
  e.host = ep.name;
  e.message = std::move(message);
  e.fix = std::move(fix);
  e.retryable = retryable;
  return e;
}

std::string fingerprint(ssh_key key)
{
  unsigned char* hash = nullptr;
  size_t len = 0;
  if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &len) != SSH_OK) {
    return "(unknown fingerprint)";
  }
  char* text = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, len);
  std::string out = text != nullptr ? text : "(unknown fingerprint)";
  ssh_string_free_char(text);
  ssh_clean_pubkey_hash(&hash);
  return out;
}

// The name known_hosts uses for the endpoint: "addr", or "[addr]:port" off port 22.
std::string known_hosts_name(const Endpoint& ep)
{
  return ep.port == 22 ? ep.address : fmt::format("[{}]:{}", ep.address, ep.port);
}

// The first known_hosts entry for `name` (hashed names included): its 1-based line and the
// fingerprint of the key it records. line 0 when there is none.
struct RecordedKey {
  int line = 0;
  std::string fingerprint = "(no entry)";
};

RecordedKey find_recorded_key(const std::string& file, const std::string& name);

RecordedKey find_recorded_key(const std::string& file, const std::string& name)
{
  std::ifstream in(file);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    ssh_knownhosts_entry* entry = nullptr;
    if (ssh_known_hosts_parse_line(name.c_str(), line.c_str(), &entry) == SSH_OK && entry != nullptr) {
      RecordedKey found{n, entry->publickey != nullptr ? fingerprint(entry->publickey) : "(unreadable key)"};
      ssh_knownhosts_entry_free(entry);
      return found;
    }
    ssh_knownhosts_entry_free(entry);
  }
  return {};
}

Retryable classify_connection_error(const std::string& message)
{
  for (const char* transient : {"refused", "reset", "imed out", "Timeout", "timeout", "No route", "nreachable",
                                "disconnected", "closed", "Socket error", "Broken pipe"}) {
    if (message.find(transient) != std::string::npos) {
      return Retryable::yes;
    }
  }
  return Retryable::no;
}

struct PassphraseProbe {
  bool asked = false;
};

extern "C" int refuse_passphrase(const char* /*prompt*/, char* /*buf*/, size_t /*len*/, int /*echo*/,
                                 int /*verify*/, void* userdata)
{
  static_cast<PassphraseProbe*>(userdata)->asked = true;
  return -1; // mlplat never asks for a passphrase: such keys go through ssh-agent
}

struct ExitSignal {
  std::string name;
};

extern "C" void on_exit_signal(ssh_session /*session*/, ssh_channel /*channel*/, const char* signal, int /*core*/,
                               const char* /*errmsg*/, const char* /*lang*/, void* userdata)
{
  static_cast<ExitSignal*>(userdata)->name = signal != nullptr ? signal : "?";
}

// Splits streamed output into lines for the debug log, capping very long lines.
class LineLogger {
public:
  LineLogger(std::string host, const char* tag) : m_host(std::move(host)), m_tag(tag) {}
  ~LineLogger() { flush(); }
  void add(std::string_view chunk)
  {
    for (char c : chunk) {
      if (c == '\n') {
        flush();
      } else if (m_line.size() < k_max_log_line) {
        m_line += c;
      } else {
        ++m_dropped;
      }
    }
  }
  void flush()
  {
    if (m_line.empty() && m_dropped == 0) {
      return;
    }
    log::write(log::Level::debug, m_host,
               m_dropped == 0 ? fmt::format("{} {}", m_tag, m_line)
                              : fmt::format("{} {} [... {} more bytes]", m_tag, m_line, m_dropped));
    m_line.clear();
    m_dropped = 0;
  }

private:
  std::string m_host;
  const char* m_tag;
  std::string m_line;
  size_t m_dropped = 0;
};

std::string tail(const std::string& s, size_t max_lines = 5)
{
  auto lines = text::split(text::trim(s), '\n');
  if (lines.size() > max_lines) {
    lines.erase(lines.begin(), lines.end() - static_cast<long>(max_lines));
  }
  return text::join(lines, "\n");
}

} // namespace

// The tunnel through a bastion: the bastion's own session, a direct-tcpip channel to the target, and a
// socketpair whose one end is the target session's socket; one thread moves bytes between the other
// end and the channel. The thread alone uses the bastion's session.
struct Tunnel {
  std::unique_ptr<Session> bastion;
  ssh_channel channel = nullptr;
  int fd = -1; // the pump's end
  std::atomic<bool> stop{false};
  std::thread pump;

  ~Tunnel()
  {
    stop = true;
    if (pump.joinable()) {
      pump.join();
    }
    if (fd >= 0) {
      ::close(fd);
    }
    if (channel != nullptr) {
      ssh_channel_close(channel);
      ssh_channel_free(channel);
    }
  }
};

struct Session::Handles {
  ssh_session session = nullptr;
  std::unique_ptr<Tunnel> tunnel; // outlives the session that runs over it
  ~Handles()
  {
    if (session != nullptr) {
      ssh_disconnect(session);
      ssh_free(session); // closes its end of the socketpair: the pump sees the end
    }
    tunnel.reset();
  }
};

namespace {

bool write_fd(int fd, const char* data, size_t size)
{
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Moves bytes both ways until either side ends (or the tunnel is stopped).
void run_pump(ssh_session bastion, ssh_channel channel, int fd, const std::atomic<bool>& stop)
{
  std::array<char, 32768> buf{};
  while (!stop) {
    pollfd p[2] = {{fd, POLLIN, 0}, {ssh_get_fd(bastion), POLLIN, 0}};
    ::poll(p, 2, 50);
    if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      const ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n <= 0) {
        ssh_channel_send_eof(channel);
        break;
      }
      if (ssh_channel_write(channel, buf.data(), static_cast<uint32_t>(n)) == SSH_ERROR) {
        break;
      }
    }
    const int n = ssh_channel_read_nonblocking(channel, buf.data(), static_cast<uint32_t>(buf.size()), 0);
    if (n == SSH_ERROR) {
      break;
    }
    if (n > 0 && !write_fd(fd, buf.data(), static_cast<size_t>(n))) {
      break;
    }
    if (n == 0 && (ssh_channel_is_eof(channel) || ssh_channel_is_closed(channel))) {
      break;
    }
  }
  ::shutdown(fd, SHUT_RDWR);
}

} // namespace

std::string ExecResult::status_text() const
{
  if (exit_status) {
    return fmt::format("exit status {}", *exit_status);
  }
  return signal.empty() ? std::string("no exit status") : fmt::format("killed by signal {}", signal);
}

Endpoint endpoint_for(const config::Host& host)
{
  Endpoint ep;
  ep.name = host.name;
  ep.address = host.address;
  ep.port = host.ssh.port;
  ep.user = host.ssh.user;
  ep.key_path = fs::expand_home(host.ssh.key_path);
  ep.agent = host.ssh.agent;
  ep.known_hosts = fs::expand_home(host.ssh.known_hosts);
  ep.host_key_policy = host.ssh.host_key_policy == config::HostKeyPolicy::strict ? HostKeyPolicy::strict
                                                                                   : HostKeyPolicy::accept_new;
  ep.connect_timeout = std::chrono::seconds(host.ssh.connect_timeout_seconds);
  if (host.ssh.bastion) {
    // libssh 0.10 has no ProxyJump of its own: mlplat connects to the bastion with a second libssh
    // session (the same known_hosts file and policy) and tunnels through a direct-tcpip channel.
    const auto& b = *host.ssh.bastion;
    auto via = std::make_shared<Endpoint>(ep);
    via->name = fmt::format("{} (bastion {})", host.name, b.address);
    via->address = b.address;
    via->port = b.port;
    via->user = b.user.empty() ? ep.user : b.user;
    via->key_path = fs::expand_home(b.key_path.empty() ? host.ssh.key_path : b.key_path);
    via->via = nullptr;
    ep.via = std::move(via);
  }
  return ep;
}

Session::Session(Endpoint endpoint, std::unique_ptr<Handles> handles)
  : m_endpoint(std::move(endpoint)), m_handles(std::move(handles))
{
}

Session::~Session() = default;

namespace {

Status verify_host_key(ssh_session s, const Endpoint& ep)
{
  ssh_key server_key = nullptr;
  if (ssh_get_server_publickey(s, &server_key) != SSH_OK) {
    return tl::unexpected(host_error(ep, ErrorCode::connect_failed, fmt::format("no host key received: {}", ssh_get_error(s))));
  }
  const std::string presented = fingerprint(server_key);
  ssh_key_free(server_key);
  const std::string name = known_hosts_name(ep);

  const auto state = ssh_session_is_known_server(s);
  switch (state) {
  case SSH_KNOWN_HOSTS_OK:
    return {};
  case SSH_KNOWN_HOSTS_CHANGED:
  case SSH_KNOWN_HOSTS_OTHER: {
    const RecordedKey recorded = find_recorded_key(ep.known_hosts, name);
    return tl::unexpected(host_error(
      ep, ErrorCode::host_key_changed,
      fmt::format("HOST KEY MISMATCH for {}: {}:{} records {}, but the host presented {}{}. Someone may be "
                  "intercepting the connection, or the host was reinstalled. mlplat will not connect.",
                  name, ep.known_hosts, recorded.line, recorded.fingerprint, presented,
                  state == SSH_KNOWN_HOSTS_OTHER ? " (a key of another type)" : ""),
      fmt::format("check the new fingerprint on the host's console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub); "
                  "only if it matches {}, remove the old entry with: ssh-keygen -R '{}' -f {}",
                  presented, name, ep.known_hosts)));
  }
  case SSH_KNOWN_HOSTS_UNKNOWN:
  case SSH_KNOWN_HOSTS_NOT_FOUND:
    if (ep.host_key_policy == HostKeyPolicy::strict) {
      return tl::unexpected(host_error(
        ep, ErrorCode::host_key_unknown,
        fmt::format("host key of {} ({}) is not in {} and hostKeyPolicy is strict", name, presented, ep.known_hosts),
        fmt::format("check the fingerprint on the host's console, then add it: ssh-keyscan -p {} {} >> {} "
                    "(or set spec.ssh.hostKeyPolicy: accept-new to record unknown keys on first use)",
                    ep.port, ep.address, ep.known_hosts)));
    }
    {
      std::lock_guard lock(g_known_hosts_mutex);
      const auto dir = std::filesystem::path(ep.known_hosts).parent_path();
      if (!dir.empty() && !std::filesystem::exists(dir)) {
        TRY(fs::ensure_private_dir(dir));
      }
      if (ssh_session_update_known_hosts(s) != SSH_OK) {
        return tl::unexpected(host_error(ep, ErrorCode::io, fmt::format("cannot record the host key in {}: {}", ep.known_hosts, ssh_get_error(s))));
      }
    }
    log::write(log::Level::warn, ep.name,
               fmt::format("new host key {} for {} recorded in {} (hostKeyPolicy accept-new)", presented, name, ep.known_hosts));
    return {};
  case SSH_KNOWN_HOSTS_ERROR:
    break;
  }
  return tl::unexpected(host_error(ep, ErrorCode::io, fmt::format("cannot read known_hosts file {}: {}", ep.known_hosts, ssh_get_error(s)),
                                   "check that the file is readable and well formed"));
}

Status authenticate(ssh_session s, const Endpoint& ep)
{
  const std::string who = fmt::format("{}@{}", ep.user, known_hosts_name(ep));
  if (!ep.key_path.empty()) {
    ssh_key key = nullptr;
    PassphraseProbe probe;
    const int rc = ssh_pki_import_privkey_file(ep.key_path.c_str(), nullptr, refuse_passphrase, &probe, &key);
    if (rc != SSH_OK) {
      if (!ep.agent) {
        if (probe.asked) {
          return tl::unexpected(host_error(ep, ErrorCode::auth_failed,
                                           fmt::format("key {} is protected by a passphrase, and mlplat never asks for one", ep.key_path),
                                           fmt::format("load it into ssh-agent (ssh-add {}) and set spec.ssh.agent: true", ep.key_path)));
        }
        return tl::unexpected(host_error(ep, ErrorCode::auth_failed, fmt::format("cannot read private key {}", ep.key_path),
                                         "check that keyPath names an OpenSSH private key"));
      }
    } else {
      const std::string fp = fingerprint(key);
      const int auth = ssh_userauth_publickey(s, nullptr, key);
      ssh_key_free(key);
      if (auth == SSH_AUTH_SUCCESS) {
        return {};
      }
      if (auth == SSH_AUTH_ERROR) {
        const std::string msg = ssh_get_error(s);
        return tl::unexpected(host_error(ep, ErrorCode::connect_failed, fmt::format("connection lost during authentication: {}", msg),
                                         {}, classify_connection_error(msg)));
      }
      if (!ep.agent) {
        return tl::unexpected(host_error(ep, ErrorCode::auth_failed,
                                         fmt::format("{} refused key {} ({})", who, ep.key_path, fp),
                                         fmt::format("add {}.pub to ~{}/.ssh/authorized_keys on the host (ssh-copy-id -i {} {}), "
                                                     "or fix spec.ssh.user / keyPath",
                                                     ep.key_path, ep.user, ep.key_path, who)));
      }
    }
  }
  if (ep.agent) {
    if (std::getenv("SSH_AUTH_SOCK") == nullptr) {
      return tl::unexpected(host_error(ep, ErrorCode::auth_failed, "agent: true, but SSH_AUTH_SOCK is not set",
                                       "start ssh-agent (eval $(ssh-agent)) and add your key with ssh-add"));
    }
    const int auth = ssh_userauth_agent(s, nullptr);
    if (auth == SSH_AUTH_SUCCESS) {
      return {};
    }
    return tl::unexpected(host_error(ep, ErrorCode::auth_failed, fmt::format("{} accepted none of the keys in ssh-agent", who),
                                     fmt::format("ssh-add the right key, or add its public key to ~{}/.ssh/authorized_keys on the host", ep.user)));
  }
  return tl::unexpected(host_error(ep, ErrorCode::auth_failed, "no key to authenticate with", "set spec.ssh.keyPath or spec.ssh.agent: true"));
}

} // namespace

Result<std::unique_ptr<Tunnel>> Session::open_tunnel(const Endpoint& ep)
{
  auto t = std::make_unique<Tunnel>();
  TRY_ASSIGN(t->bastion, connect(*ep.via));
  ssh_session b = t->bastion->m_handles->session;
  t->channel = ssh_channel_new(b);
  if (t->channel == nullptr) {
    return tl::unexpected(host_error(ep, ErrorCode::internal, "libssh: cannot allocate a channel on the bastion's session"));
  }
  if (ssh_channel_open_forward(t->channel, ep.address.c_str(), ep.port, "127.0.0.1", 22) != SSH_OK) {
    const std::string msg = ssh_get_error(b);
    ssh_channel_free(t->channel);
    t->channel = nullptr;
    return tl::unexpected(host_error(ep, ErrorCode::connect_failed,
                                     fmt::format("the bastion {} did not open a connection to {}:{}: {}", ep.via->address, ep.address, ep.port, msg),
                                     "check that the bastion reaches the host, and that its sshd allows TCP forwarding (AllowTcpForwarding)",
                                     classify_connection_error(msg)));
  }
  return t;
}

Result<std::unique_ptr<Session>> Session::connect(const Endpoint& ep)
{
  auto handles = std::make_unique<Handles>();
  handles->session = ssh_new();
  ssh_session s = handles->session;
  if (s == nullptr) {
    return tl::unexpected(host_error(ep, ErrorCode::internal, "libssh: cannot allocate a session"));
  }
  const unsigned int port = static_cast<unsigned int>(ep.port);
  const long timeout = static_cast<long>(ep.connect_timeout.count());
  const bool process_config = false; // mlplat's config is authoritative, not ~/.ssh/config
  const int nodelay = 1;
  ssh_options_set(s, SSH_OPTIONS_HOST, ep.address.c_str());
  ssh_options_set(s, SSH_OPTIONS_PORT, &port);
  ssh_options_set(s, SSH_OPTIONS_USER, ep.user.c_str());
  ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &process_config);
  ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &timeout);
  ssh_options_set(s, SSH_OPTIONS_NODELAY, &nodelay);
  ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, ep.known_hosts.c_str());
  if (ep.via) {
    TRY_ASSIGN(handles->tunnel, open_tunnel(ep));
    int fd = -1;
    {
      int pair[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
        return tl::unexpected(host_error(ep, ErrorCode::io, fmt::format("cannot make a socketpair: {}", std::strerror(errno))));
      }
      fd = pair[0];
      handles->tunnel->fd = pair[1];
    }
    ssh_options_set(s, SSH_OPTIONS_FD, &fd);
    Tunnel& t = *handles->tunnel;
    t.pump = std::thread(run_pump, t.bastion->m_handles->session, t.channel, t.fd, std::cref(t.stop));
  }
  log::write(log::Level::debug, ep.name, fmt::format("connecting to {}@{}:{}{}", ep.user, ep.address, ep.port,
                                                     ep.via ? " through the bastion " + ep.via->address : std::string()));
  // Connected without blocking, so that an interrupt ends the wait for a silent host at once (libssh's
  // own connect waits out its timeout); the session blocks again once connected.
  ssh_set_blocking(s, 0);
  const auto connect_until = Clock::now() + ep.connect_timeout;
  int connected = SSH_AGAIN;
  while ((connected = ssh_connect(s)) == SSH_AGAIN) {
    if (interrupt::requested()) {
      return tl::unexpected(host_error(ep, ErrorCode::interrupted, fmt::format("interrupted while connecting to {}:{}", ep.address, ep.port)));
    }
    if (Clock::now() > connect_until) {
      return tl::unexpected(host_error(ep, ErrorCode::connect_failed,
                                       fmt::format("cannot connect to {}:{}: timed out after {} s", ep.address, ep.port, ep.connect_timeout.count()),
                                       "check the address, that sshd runs on that port, and firewalls on the way", Retryable::yes));
    }
    pollfd pfd{ssh_get_fd(s), POLLIN, 0}; // the server speaks first (its banner), then answers each step
    if (pfd.fd >= 0) {
      ::poll(&pfd, 1, 50);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ssh_set_blocking(s, 1);
  if (connected != SSH_OK) {
    const std::string msg = ssh_get_error(s);
    return tl::unexpected(host_error(ep, ErrorCode::connect_failed, fmt::format("cannot connect to {}:{}: {}", ep.address, ep.port, msg),
                                     "check the address, that sshd runs on that port, and firewalls on the way",
                                     classify_connection_error(msg)));
  }
  TRY(verify_host_key(s, ep));
  TRY(authenticate(s, ep));
  return std::unique_ptr<Session>(new Session(ep, std::move(handles)));
}

Result<std::unique_ptr<Session>> Session::connect_with_retry(const Endpoint& ep, const Backoff& policy, int* attempts)
{
  return retry(policy, ep.name + ": connect", [&] { return connect(ep); }, attempts);
}

Result<ExecResult> Session::exec(const Command& cmd, const OutputSink& sink)
{
  const Endpoint& ep = m_endpoint;
  ssh_session s = m_handles->session;
  const auto start = Clock::now();
  const auto hard_deadline = start + cmd.deadline + k_deadline_grace;
  const std::string line = remote_command_line(cmd, ep.user);
  const bool sensitive = cmd.sensitive == Sensitive::yes;
  log::write(log::Level::debug, ep.name,
             sensitive ? fmt::format("run: {} [sensitive: command not logged]", cmd.description)
                       : fmt::format("run: {}{}", cmd.privilege == Privilege::root ? "(root) " : "", cmd.script));

  auto lost = [&](const std::string& what) {
    const std::string msg = fmt::format("{}: {}", what, ssh_get_error(s));
    return tl::unexpected(host_error(ep, ErrorCode::connect_failed, fmt::format("connection lost while running '{}': {}", cmd.description, msg),
                                     "the host or its sshd went away; rerun when it is back", Retryable::yes));
  };

  std::unique_ptr<ssh_channel_struct, void (*)(ssh_channel)> channel(ssh_channel_new(s), [](ssh_channel c) {
    if (c != nullptr) {
      ssh_channel_close(c);
      ssh_channel_free(c);
    }
  });
  ssh_channel ch = channel.get();
  if (ch == nullptr || ssh_channel_open_session(ch) != SSH_OK) {
    return lost("cannot open a channel");
  }
  ExitSignal exit_signal;
  ssh_channel_callbacks_struct callbacks{};
  callbacks.userdata = &exit_signal;
  callbacks.channel_exit_signal_function = on_exit_signal;
  ssh_callbacks_init(&callbacks);
  ssh_set_channel_callbacks(ch, &callbacks);
  if (ssh_channel_request_exec(ch, line.c_str()) != SSH_OK) {
    return lost("cannot start the command");
  }

  ExecResult result;
  LineLogger out_log(ep.name, "|"), err_log(ep.name, "!");
  std::array<char, 65536> buf{};
  std::string pending; // stdin bytes read from the input but not yet accepted by the channel
  size_t pending_pos = 0;
  bool input_open = cmd.input != nullptr;
  if (!input_open) {
    ssh_channel_send_eof(ch);
  }
  for (;;) {
    if (interrupt::requested() && !cmd.runs_after_interrupt) {
      // The host's `timeout` passes TERM to the command's process group; a script's traps then remove
      // what it placed (a join file with its token). Up to a second for that to end, so it is done
      // when mlplat exits.
      ssh_channel_request_send_signal(ch, "TERM");
      const auto until = Clock::now() + k_interrupt_wait;
      while (Clock::now() < until && !ssh_channel_is_eof(ch) && !ssh_channel_is_closed(ch) && ssh_is_connected(s) != 0) {
        if (ssh_channel_read_timeout(ch, buf.data(), static_cast<uint32_t>(buf.size()), 0, 50) == SSH_ERROR ||
            ssh_channel_read_timeout(ch, buf.data(), static_cast<uint32_t>(buf.size()), 1, 1) == SSH_ERROR) {
          break;
        }
      }
      return tl::unexpected(host_error(ep, ErrorCode::interrupted, fmt::format("interrupted while running '{}'", cmd.description)));
    }
    if (Clock::now() > hard_deadline) {
      ssh_channel_request_send_signal(ch, "KILL");
      return tl::unexpected(host_error(ep, ErrorCode::deadline,
                                       fmt::format("'{}' did not finish within its {} s deadline (the host did not end it either)",
                                                   cmd.description, cmd.deadline.count()),
                                       "check the host's load and whether the command hangs (for sudo: a hostname that does not resolve)"));
    }
    bool progress = false;
    // stdin: only as much as the remote window takes, so writing never blocks while output waits.
    if (input_open && ssh_channel_window_size(ch) > 0) {
      if (pending_pos == pending.size()) {
        const size_t n = cmd.input->read(buf.data(), std::min<size_t>(buf.size(), 32768));
        pending.assign(buf.data(), n);
        pending_pos = 0;
        if (n == 0) {
          ssh_channel_send_eof(ch);
          input_open = false;
          if (cmd.input->failed()) {
            return tl::unexpected(host_error(ep, ErrorCode::io, fmt::format("reading the input of '{}' failed", cmd.description)));
          }
        }
      }
      if (input_open) {
        const uint32_t chunk = std::min<uint32_t>(ssh_channel_window_size(ch), static_cast<uint32_t>(pending.size() - pending_pos));
        const int written = ssh_channel_write(ch, pending.data() + pending_pos, chunk);
        if (written == SSH_ERROR) {
          input_open = false; // the command closed its stdin or ended; its output tells the rest
        } else {
          pending_pos += static_cast<size_t>(written);
          progress = progress || written > 0;
        }
      }
    }
    for (int is_stderr : {0, 1}) {
      const int n = ssh_channel_read_nonblocking(ch, buf.data(), static_cast<uint32_t>(buf.size()), is_stderr);
      if (n == SSH_ERROR) {
        return lost("read failed");
      }
      if (n > 0) {
        const std::string_view chunk(buf.data(), static_cast<size_t>(n));
        (is_stderr ? result.err : result.out).append(chunk);
        if (!sensitive) {
          (is_stderr ? err_log : out_log).add(chunk);
        }
        if (sink) {
          sink(is_stderr ? Stream::err : Stream::out, chunk);
        }
        progress = true;
      }
    }
    if (progress) {
      continue;
    }
    if (ssh_channel_is_eof(ch) || ssh_channel_is_closed(ch)) {
      break;
    }
    if (ssh_is_connected(s) == 0) {
      return lost("disconnected");
    }
    pollfd pfd{ssh_get_fd(s), POLLIN, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(hard_deadline - Clock::now()).count();
    ::poll(&pfd, 1, static_cast<int>(std::clamp<long>(left, 0, 100)));
  }
  const int status = ssh_channel_get_exit_status(ch);
  if (status >= 0) {
    result.exit_status = status;
  }
  result.signal = exit_signal.name;
  result.duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  out_log.flush();
  err_log.flush();
  log::write(log::Level::debug, ep.name, fmt::format("done: {} ({}, {} ms)", cmd.description, result.status_text(), result.duration.count()));

  // `timeout` exits 124 (TERM worked) or 137 (KILL was needed) when the deadline passed.
  if ((status == 124 || status == 137) && result.duration + std::chrono::seconds(1) >= cmd.deadline) {
    return tl::unexpected(host_error(ep, ErrorCode::deadline,
                                     fmt::format("'{}' did not finish within its {} s deadline and was ended on the host",
                                                 cmd.description, cmd.deadline.count())));
  }
  if (cmd.privilege == Privilege::root && ep.user != "root" && status == 1 && result.err.rfind("sudo: ", 0) == 0) {
    const std::string sudoers = fmt::format("/etc/sudoers.d/mlplat");
    if (result.err.find("password is required") != std::string::npos) {
      return tl::unexpected(host_error(
        ep, ErrorCode::sudo_failed, fmt::format("sudo asks user '{}' for a password; mlplat only uses non-interactive sudo (sudo -n)", ep.user),
        fmt::format("on the host: echo '{} ALL=(ALL) NOPASSWD: ALL' | sudo tee {} && sudo chmod 0440 {} && sudo visudo -cf {} "
                    "(or connect as root)", ep.user, sudoers, sudoers, sudoers)));
    }
    if (result.err.find("tty") != std::string::npos || result.err.find("terminal is required") != std::string::npos) {
      return tl::unexpected(host_error(ep, ErrorCode::sudo_failed, fmt::format("sudo requires a TTY for user '{}' (Defaults requiretty)", ep.user),
                                       fmt::format("on the host: add 'Defaults:{} !requiretty' to {} and check it with visudo -cf {}",
                                                   ep.user, sudoers, sudoers)));
    }
    return tl::unexpected(host_error(ep, ErrorCode::sudo_failed, fmt::format("sudo refused user '{}': {}", ep.user, tail(result.err, 2)),
                                     fmt::format("grant '{}' passwordless sudo in {}, or connect as root", ep.user, sudoers)));
  }
  return result;
}

Result<ExecResult> Session::run(const Command& cmd, const OutputSink& sink)
{
  TRY_ASSIGN(auto result, exec(cmd, sink));
  if (!result.ok()) {
    const std::string detail = cmd.sensitive == Sensitive::yes ? std::string("(output withheld: sensitive)") : tail(result.err);
    Error e = host_error(m_endpoint, ErrorCode::failed,
                         fmt::format("'{}' failed ({}){}{}", cmd.description, result.status_text(), detail.empty() ? "" : ": ", detail));
    return tl::unexpected(std::move(e));
  }
  return result;
}

Status Session::upload(const std::shared_ptr<Input>& input, const std::string& sha256, uint64_t size,
                       const std::string& remote_path, unsigned mode, Privilege privilege)
{
  // The temporary file sits beside the target so the final rename is atomic. The traps remove it on
  // any failure and whatever signal ends the shell (a dropped connection ends `cat` early, and the
  // shell's next write to the closed channel raises SIGPIPE); what a SIGKILL or a crash left, the next
  // upload into that directory removes (its name says what it is; one not written for a minute is
  // no live upload, since the cluster lock keeps other runs away). The checksum is computed on the
  // host from what actually landed on its disk.
  const std::string script = fmt::format(
    "set -eu\n"
    "dest={0}\n"
    "dir=$(dirname \"$dest\")\n"
    "mkdir -p \"$dir\"\n"
    "find \"$dir\" -maxdepth 1 -type f -name '.mlplat-upload.*' -mmin +1 -delete 2>/dev/null || true\n"
    "tmp=$(mktemp \"$dir/.mlplat-upload.XXXXXX\")\n"
    "trap 'rm -f \"$tmp\"' EXIT\n"
    "trap 'rm -f \"$tmp\"; exit 129' HUP\n"
    "trap 'rm -f \"$tmp\"; exit 130' INT\n"
    "trap 'rm -f \"$tmp\"; exit 141' PIPE\n"
    "trap 'rm -f \"$tmp\"; exit 143' TERM\n"
    "if ! cat > \"$tmp\"; then\n"
    "  df -Pk \"$dir\" | awk 'NR == 2 {{printf \"the filesystem %s (mounted on %s) has %s KiB free of %s KiB\\n\", $1, $6, $4, $2}}' >&2\n"
    "  exit 4\n"
    "fi\n"
    "sum=$(sha256sum \"$tmp\" | cut -d' ' -f1)\n"
    "if [ \"$sum\" != {1} ]; then echo \"checksum mismatch: expected {1}, host has $sum\" >&2; exit 3; fi\n"
    "chmod {2:o} \"$tmp\"\n"
    "sync \"$tmp\" 2>/dev/null || true\n"
    "mv -f \"$tmp\" \"$dest\"\n"
    "trap - EXIT HUP INT PIPE TERM\n"
    "echo \"$sum\"\n",
    text::shell_quote(remote_path), sha256, mode);
  Command cmd;
  cmd.script = script;
  cmd.description = fmt::format("upload {} ({} bytes, mode {:04o})", remote_path, size, mode);
  cmd.privilege = privilege;
  cmd.effect = Effect::mutating;
  cmd.input = input;
  // Generous: at least 60 s, plus one second per 4 MB.
  cmd.deadline = std::chrono::seconds(60 + size / (4u << 20));
  TRY_ASSIGN(auto result, exec(cmd));
  if (!result.ok()) {
    return tl::unexpected(host_error(m_endpoint, ErrorCode::io, fmt::format("upload of {} failed ({}): {}", remote_path, result.status_text(), tail(result.err)),
                                     result.err.find("No space left") != std::string::npos
                                       ? "free space on that filesystem (or give it more), then run the command again: finished steps are not repeated"
                                       : "check free space and permissions on the host"));
  }
  if (text::trim(result.out) != sha256) {
    return tl::unexpected(host_error(m_endpoint, ErrorCode::io, fmt::format("upload of {}: the host reported checksum '{}', expected {}", remote_path,
                                                                            text::trim(result.out), sha256)));
  }
  return {};
}

Status Session::upload_bytes(const std::string& data, const std::string& remote_path, unsigned mode, Privilege privilege)
{
  return upload(input_from_string(data), sha256_hex(data), data.size(), remote_path, mode, privilege);
}

Status Session::upload_file(const std::filesystem::path& local_path, const std::string& remote_path, unsigned mode,
                            Privilege privilege)
{
  TRY_ASSIGN(const auto sha, sha256_file_hex(local_path));
  std::error_code ec;
  const auto size = std::filesystem::file_size(local_path, ec);
  return upload(input_from_file(local_path), sha, ec ? 0 : size, remote_path, mode, privilege);
}

} // namespace mlplat::transport
