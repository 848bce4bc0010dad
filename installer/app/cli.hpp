// Command-line parsing (CLI11) and dispatch to the commands.
#pragma once

namespace mlplat::app {

// --- Interface ---

// Parses argv, sets up logging, runs the chosen command and returns the process exit code.
int run_cli(int argc, char** argv);

} // namespace mlplat::app
