// Catch2 include shim: v2 (Debian 12 main) today, v3 (backports) later without touching the tests.
#pragma once
#if __has_include(<catch2/catch_test_macros.hpp>)
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif
