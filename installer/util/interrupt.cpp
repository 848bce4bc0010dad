#include "util/interrupt.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <thread>

namespace mlplat::interrupt {

namespace {
std::atomic<int> g_signal{0};

// Async-signal-safe: only atomics, write(2), alarm(2) and _exit(2).
extern "C" void on_alarm(int /*signal*/)
{
  constexpr char message[] = "mlplat: error: the cleanup after the interrupt took too long; exiting now\n";
  [[maybe_unused]] const auto n = ::write(STDERR_FILENO, message, sizeof message - 1);
  const int s = g_signal.load();
  ::_exit(128 + (s == 0 ? SIGINT : s));
}

extern "C" void on_signal(int signal)
{
  int expected = 0;
  if (!g_signal.compare_exchange_strong(expected, signal)) {
    // The second signal: the operator insists.
    ::_exit(128 + expected);
  }
  ::alarm(static_cast<unsigned>(k_grace.count()));
}
} // namespace

void install_handlers()
{
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  struct sigaction alarm_action {};
  alarm_action.sa_handler = on_alarm;
  sigemptyset(&alarm_action.sa_mask);
  sigaction(SIGALRM, &alarm_action, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

bool requested()
{
  return g_signal.load() != 0;
}

void request(int signal)
{
  int expected = 0;
  g_signal.compare_exchange_strong(expected, signal);
}

void reset_for_tests()
{
  g_signal.store(0);
}

int exit_code()
{
  const int s = g_signal.load();
  return 128 + (s == 0 ? SIGINT : s);
}

bool sleep_for(std::chrono::milliseconds duration)
{
  using Clock = std::chrono::steady_clock;
  const auto end = Clock::now() + duration;
  for (auto now = Clock::now(); now < end && !requested(); now = Clock::now()) {
    std::this_thread::sleep_for(std::min<Clock::duration>(std::chrono::milliseconds(50), end - now));
  }
  return !requested();
}

} // namespace mlplat::interrupt
