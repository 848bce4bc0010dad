// Starts tests/support/httpd.py (a real HTTP server) for one test and stops it at scope end.
#pragma once

#include "support/catch.hpp"

#include <boost/process.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace mlplat::testing {

class HttpServer {
public:
  // Serves `root` on `bind` (loopback unless a test names the testbed's bridge address).
  HttpServer(const std::string& root, const std::string& bind = "127.0.0.1", double stall_seconds = 60)
    : m_log(root + "/../httpd-requests.log"), m_bind(bind)
  {
    std::filesystem::remove(m_log);
    namespace bp = boost::process;
    m_child = bp::child(bp::search_path("python3"), std::string(MLPLAT_SOURCE_DIR) + "/tests/support/httpd.py", "--root", root,
                        "--bind", bind, "--log", m_log, "--stall-seconds", std::to_string(stall_seconds), bp::std_out > m_out);
    std::string line;
    REQUIRE(std::getline(m_out, line));
    m_port = std::stoi(line);
  }
  ~HttpServer()
  {
    std::error_code ec;
    m_child.terminate(ec);
    m_child.wait(ec);
  }
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  std::string url(const std::string& path = "") const
  {
    return "http://" + m_bind + ":" + std::to_string(m_port) + path;
  }

  // Every request served so far: path, Range header ("" when none), status.
  struct Request {
    std::string path;
    std::string range;
    int status;
  };
  std::vector<Request> requests() const
  {
    std::vector<Request> out;
    std::ifstream in(m_log);
    std::string line;
    while (std::getline(in, line)) {
      const auto j = nlohmann::json::parse(line);
      out.push_back({j["path"], j["range"].is_null() ? "" : j["range"].get<std::string>(), j["status"]});
    }
    return out;
  }

private:
  std::string m_log;
  std::string m_bind;
  int m_port = 0;
  boost::process::ipstream m_out;
  boost::process::child m_child;
};

} // namespace mlplat::testing
