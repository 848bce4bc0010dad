#include "util/progress.hpp"

#include "util/log.hpp"
#include "util/text.hpp"

#include <fmt/core.h>
#include <unistd.h>

namespace mlplat {

namespace {

constexpr auto k_remind_every = std::chrono::seconds(5);

std::string pending_names(const std::vector<std::string>& items, const std::vector<bool>& done, size_t max)
{
  std::vector<std::string> names;
  size_t more = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!done[i]) {
      if (names.size() < max) {
        names.push_back(items[i]);
      } else {
        ++more;
      }
    }
  }
  return text::join(names, ", ") + (more > 0 ? fmt::format(" and {} more", more) : "");
}

} // namespace

Progress::Progress(std::string what, std::vector<std::string> items, std::chrono::seconds deadline, Terminal terminal)
  : m_what(std::move(what)),
    m_items(std::move(items)),
    m_done(m_items.size(), false),
    m_deadline(deadline),
    m_start(std::chrono::steady_clock::now()),
    m_terminal(terminal == Terminal::yes || (terminal == Terminal::detect && ::isatty(STDERR_FILENO) == 1))
{
  if (m_terminal) {
    std::lock_guard lock(m_mutex);
    draw_locked();
  }
  m_reminder = std::thread([this] { remind(); });
}

Progress::~Progress()
{
  {
    std::lock_guard lock(m_mutex);
    m_stop = true;
    if (m_terminal) {
      const std::string clear = "\r\033[K";
      (void)::write(STDERR_FILENO, clear.data(), clear.size());
    }
  }
  m_wake.notify_all();
  m_reminder.join();
}

void Progress::done(size_t index, const std::string& outcome)
{
  std::lock_guard lock(m_mutex);
  if (index >= m_done.size() || m_done[index]) {
    return;
  }
  m_done[index] = true;
  ++m_finished;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - m_start).count();
  if (m_terminal) {
    draw_locked();
  } else {
    log::write(log::Level::info, m_items[index], fmt::format("{} ({:.1f} s, {}/{})", outcome, seconds, m_finished, m_items.size()));
  }
}

void Progress::draw_locked()
{
  std::string line = fmt::format("\r\033[K{}: {}/{} hosts done", m_what, m_finished, m_items.size());
  if (m_finished < m_items.size()) {
    line += fmt::format("; waiting for {} (deadline {} s)", pending_names(m_items, m_done, 4), m_deadline.count());
  }
  (void)::write(STDERR_FILENO, line.data(), line.size());
}

void Progress::remind()
{
  std::unique_lock lock(m_mutex);
  while (!m_stop) {
    m_wake.wait_for(lock, m_terminal ? std::chrono::seconds(1) : k_remind_every);
    if (m_stop || m_finished == m_items.size()) {
      continue;
    }
    if (m_terminal) {
      draw_locked();
    } else {
      const auto waited = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - m_start);
      log::write(log::Level::info, {}, fmt::format("{}: still waiting for {} after {} s (deadline {} s)", m_what,
                                                   pending_names(m_items, m_done, 8), waited.count(), m_deadline.count()));
    }
  }
}

} // namespace mlplat
