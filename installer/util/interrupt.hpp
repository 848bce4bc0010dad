// SIGINT/SIGTERM handling: the handler only sets a flag; long loops poll it, stop starting new work,
// and the command exits 130.
#pragma once

#include <chrono>

namespace mlplat::interrupt {

// --- Interface ---

// Installs handlers for SIGINT and SIGTERM (and ignores SIGPIPE). Call once from main.
void install_handlers();

// Whether an interrupt was received.
bool requested();

// Marks an interrupt as received (used by the handler and by tests).
void request();

// Sleeps for `duration` unless an interrupt arrives first. Returns false when interrupted.
bool sleep_for(std::chrono::milliseconds duration);

} // namespace mlplat::interrupt
