#include "transport/command.hpp"

#include "util/text.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <fstream>

namespace mlplat::transport {

namespace {

class StringInput final : public Input {
public:
  explicit StringInput(std::string data) : m_data(std::move(data)) {}
  size_t read(char* buf, size_t size) override
  {
    const size_t n = std::min(size, m_data.size() - m_pos);
    std::copy_n(m_data.data() + m_pos, n, buf);
    m_pos += n;
    return n;
  }

private:
  std::string m_data;
  size_t m_pos = 0;
};

class FileInput final : public Input {
public:
  explicit FileInput(const std::filesystem::path& path) : m_in(path, std::ios::binary), m_failed(!m_in) {}
  size_t read(char* buf, size_t size) override
  {
    if (m_failed) {
      return 0;
    }
    m_in.read(buf, static_cast<std::streamsize>(size));
    if (m_in.bad()) {
      m_failed = true;
      return 0;
    }
    return static_cast<size_t>(m_in.gcount());
  }
  bool failed() const override { return m_failed; }

private:
  std::ifstream m_in;
  bool m_failed;
};

} // namespace

std::shared_ptr<Input> input_from_string(std::string data)
{
  return std::make_shared<StringInput>(std::move(data));
}

std::shared_ptr<Input> input_from_file(const std::filesystem::path& path)
{
  return std::make_shared<FileInput>(path);
}

std::string remote_command_line(const Command& cmd, std::string_view login_user)
{
  // -k: if the script ignores SIGTERM it gets SIGKILL 5 s later. timeout signals the whole process
  // group it creates, so children of the script end too. PATH is set, not inherited: sudo's
  // secure_path on RHEL-family hosts has no /usr/local/bin (where kubeadm, kubectl, crictl and
  // containerd are installed) and sshd's default path for a login differs between distributions.
  std::string line = fmt::format("env PATH={} timeout -k 5 {} sh -c {}", k_remote_path, cmd.deadline.count(), text::shell_quote(cmd.script));
  if (cmd.privilege == Privilege::root && login_user != "root") {
    line = "sudo -n -- " + line;
  }
  return line;
}

} // namespace mlplat::transport
