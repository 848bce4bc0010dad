// SIGINT/SIGTERM handling: the handler only records the signal; long loops poll it, stop starting new
// work, run their cleanup (the cluster lock, secret files on hosts) and the command exits 128 + the
// signal (130 for SIGINT, 143 for SIGTERM). Code that does not poll cannot hold the process: a second
// signal, or a cleanup longer than the grace period, ends it at once with the same code.
#pragma once

#include <chrono>

namespace mlplat::interrupt {

// --- Interface ---

// How long the cleanup after the first signal may take before the process ends anyway.
inline constexpr std::chrono::seconds k_grace{5};

// Installs handlers for SIGINT and SIGTERM (and ignores SIGPIPE). Call once from main.
void install_handlers();

// Whether an interrupt was received.
bool requested();

// Marks an interrupt as received (used by the handler and by tests); `signal` decides the exit code.
void request(int signal = 2);

// Forgets a received interrupt (tests only: a process that was interrupted ends).
void reset_for_tests();

// The exit code for the interrupt received: 128 + its signal (130 when none was).
int exit_code();

// Sleeps for `duration` unless an interrupt arrives first. Returns false when interrupted.
bool sleep_for(std::chrono::milliseconds duration);

} // namespace mlplat::interrupt
