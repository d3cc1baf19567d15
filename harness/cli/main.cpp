#include "harness/cli/registry.h"

#include <csignal>

int main(int argc, char** argv) {
  // Past a file-size limit (RLIMIT_FSIZE) a write must fail with EFBIG and become the tool's one-line "disk
  // full" error (exit 2, the run resumable), not kill the process mid-write (docs/robustness.md).
  std::signal(SIGXFSZ, SIG_IGN);
  return gb::cli::run(argc, argv);
}
