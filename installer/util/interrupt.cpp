#include "util/interrupt.hpp"

#include <algorithm>
#include <atomic>
#include <csignal>
#include <thread>

namespace mlplat::interrupt {

namespace {
std::atomic<bool> g_requested{false};

extern "C" void on_signal(int /*signal*/)
{
  g_requested.store(true);
}
} // namespace

void install_handlers()
{
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

bool requested()
{
  return g_requested.load();
}

void request()
{
  g_requested.store(true);
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
