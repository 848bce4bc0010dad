#include "util/interrupt.hpp"

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
  const auto end = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < end) {
    if (requested()) {
      return false;
    }
    std::this_thread::sleep_for(std::min(std::chrono::milliseconds(50),
                                         std::chrono::duration_cast<std::chrono::milliseconds>(
                                           end - std::chrono::steady_clock::now() + std::chrono::milliseconds(1))));
  }
  return !requested();
}

} // namespace mlplat::interrupt
