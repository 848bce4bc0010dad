// Retry with exponential backoff and jitter, bounded in attempts and in total time. Only errors marked
// Retryable::yes are retried; everything else returns at once.
#pragma once

#include "util/error.hpp"
#include "util/interrupt.hpp"
#include "util/log.hpp"

#include <chrono>
#include <random>
#include <string_view>
#include <thread>

namespace mlplat {

// --- Interface ---

struct Backoff {
  int max_attempts = 4;                          // first try included
  std::chrono::milliseconds initial{500};        // delay before the second attempt
  double factor = 2.0;                           // growth per attempt
  std::chrono::milliseconds max_delay{5000};     // cap on one delay
  std::chrono::milliseconds max_total{30000};    // no new attempt starts after this much time
  double jitter = 0.25;                          // each delay is scaled by a random factor in [1-j, 1+j]
};

// The delay before attempt `attempt` (2 = first retry), jittered with `rng`.
std::chrono::milliseconds backoff_delay(const Backoff& policy, int attempt, std::mt19937& rng);

// Calls `fn()` (returning Result<T>) until it succeeds, fails with a non-retryable error, the policy
// is exhausted or an interrupt is requested. `attempts`, when given, receives how many calls were made.
template<typename Fn>
auto retry(const Backoff& policy, std::string_view what, Fn&& fn, int* attempts = nullptr) -> decltype(fn());

// --- Inline implementations ---

template<typename Fn>
auto retry(const Backoff& policy, std::string_view what, Fn&& fn, int* attempts) -> decltype(fn())
{
  thread_local std::mt19937 rng{std::random_device{}()};
  const auto start = std::chrono::steady_clock::now();
  for (int attempt = 1;; ++attempt) {
    if (attempts != nullptr) {
      *attempts = attempt;
    }
    auto result = fn();
    if (result || result.error().retryable == Retryable::no || attempt >= policy.max_attempts) {
      return result;
    }
    const auto delay = backoff_delay(policy, attempt + 1, rng);
    if (std::chrono::steady_clock::now() - start + delay > policy.max_total) {
      return result;
    }
    log::debug("{}: {} (attempt {}/{}, retrying in {} ms)", what, result.error().message, attempt,
               policy.max_attempts, delay.count());
    if (!interrupt::sleep_for(delay)) {
      return result;
    }
  }
}

} // namespace mlplat
