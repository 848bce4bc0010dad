#include "util/retry.hpp"

#include <algorithm>
#include <cmath>

namespace mlplat {

std::chrono::milliseconds backoff_delay(const Backoff& policy, int attempt, std::mt19937& rng)
{
  const double base = static_cast<double>(policy.initial.count()) * std::pow(policy.factor, std::max(0, attempt - 2));
  const double capped = std::min(base, static_cast<double>(policy.max_delay.count()));
  std::uniform_real_distribution<double> dist(1.0 - policy.jitter, 1.0 + policy.jitter);
  return std::chrono::milliseconds(static_cast<long>(capped * dist(rng)));
}

} // namespace mlplat
