#include "util/parallel.hpp"

#include "util/interrupt.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <thread>

namespace mlplat {

void parallel_for(size_t count, size_t concurrency, const std::function<void(size_t)>& fn)
{
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (;;) {
      if (interrupt::requested()) {
        return;
      }
      const size_t i = next.fetch_add(1);
      if (i >= count) {
        return;
      }
      fn(i);
    }
  };
  const size_t threads = std::min(count, std::max<size_t>(1, concurrency));
  std::vector<std::jthread> pool;
  pool.reserve(threads);
  for (size_t t = 0; t < threads; ++t) {
    pool.emplace_back(worker);
  }
}

Status aggregate_failures(std::vector<Error> failures, size_t total, std::string_view noun)
{
  if (failures.empty()) {
    return {};
  }
  Error e;
  e.code = ErrorCode::partial;
  e.message = fmt::format("{} of {} {} failed", failures.size(), total, noun);
  const bool all_retryable = std::all_of(failures.begin(), failures.end(),
                                         [](const Error& f) { return f.retryable == Retryable::yes; });
  e.retryable = all_retryable ? Retryable::yes : Retryable::no;
  e.children = std::move(failures);
  return tl::unexpected(std::move(e));
}

} // namespace mlplat
