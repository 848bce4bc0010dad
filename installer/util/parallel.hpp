// Bounded fan-out: run a function over N items on at most `concurrency` threads. Each item is handled
// by exactly one thread, so per-item resources (one SSH session per host) have one owner at a time.
#pragma once

#include "util/error.hpp"

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace mlplat {

// --- Interface ---

// Calls `fn(i)` for every i in [0, count) with at most `concurrency` running at once and returns when
// all have finished. After an interrupt no new item is started: callers pre-fill each item's result
// with "not started" and let `fn` overwrite it.
void parallel_for(size_t count, size_t concurrency, const std::function<void(size_t)>& fn);

// One error naming every failed item: "N of M hosts failed" with each child error (whose `host` says
// which). Returns no error when `failures` is empty.
Status aggregate_failures(std::vector<Error> failures, size_t total, std::string_view noun = "hosts");

} // namespace mlplat
