#include "util/process.hpp"

#include "util/text.hpp"

#include <boost/asio.hpp>
#include <boost/process.hpp>
#include <fmt/core.h>

#include <sys/wait.h>

#include <future>

namespace mlplat {

namespace bp = boost::process;

Result<ProcessResult> run_process(const std::vector<std::string>& argv, std::chrono::milliseconds deadline,
                                  const std::string& input)
{
  if (argv.empty()) {
    return fail(ErrorCode::internal, "run_process: empty argv");
  }
  const auto exe = argv[0].find('/') == std::string::npos ? bp::search_path(argv[0]) : boost::filesystem::path(argv[0]);
  if (exe.empty()) {
    return fail(ErrorCode::io, fmt::format("program '{}' not found in PATH", argv[0]));
  }
  const std::vector<std::string> args(argv.begin() + 1, argv.end());
  boost::asio::io_context ioc;
  std::future<std::string> out;
  std::future<std::string> err;
  std::error_code ec;
  bp::child child(exe, bp::args(args), bp::std_in < boost::asio::buffer(input), bp::std_out > out, bp::std_err > err,
                  ioc, ec);
  if (ec) {
    return fail(ErrorCode::io, fmt::format("cannot start {}: {}", argv[0], ec.message()));
  }
  ioc.run_for(deadline);
  if (!ioc.stopped()) {
    child.terminate(ec); // SIGKILL
    child.wait(ec);
    return fail(ErrorCode::deadline, fmt::format("'{}' did not finish within {} ms and was killed",
                                                 text::shell_join(argv), deadline.count()));
  }
  child.wait(ec);
  ProcessResult result;
  const int status = child.native_exit_code();
  if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  } else {
    result.exit_code = WEXITSTATUS(status);
  }
  result.out = out.get();
  result.err = err.get();
  return result;
}

} // namespace mlplat
