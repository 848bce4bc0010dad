// Progress of work over many hosts: on a terminal, one status line redrawn in place ("12/50 hosts
// done; waiting for node-3, node-7"); elsewhere (CI, logs), a plain line per finished host and, while
// some are slow, a "still waiting for ..." line every few seconds. Writes to stderr; thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mlplat {

// --- Interface ---

enum class Terminal { no, yes, detect };

class Progress {
public:
  // `what` names the work ("checking"); `items` are the host names; `deadline` is shown to say how
  // long the wait can last.
  Progress(std::string what, std::vector<std::string> items, std::chrono::seconds deadline, Terminal terminal = Terminal::detect);
  // Clears the status line (terminal) and stops the reminder thread.
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Item `index` finished; `outcome` is a few words ("ok", "unreachable").
  void done(size_t index, const std::string& outcome);

private:
  void draw_locked();
  void remind();

  std::string m_what;
  std::vector<std::string> m_items;
  std::vector<bool> m_done;
  size_t m_finished = 0;
  std::chrono::seconds m_deadline;
  std::chrono::steady_clock::time_point m_start;
  bool m_terminal;
  std::mutex m_mutex;
  std::condition_variable m_wake;
  bool m_stop = false;
  std::thread m_reminder;
};

} // namespace mlplat
