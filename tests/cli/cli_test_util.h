#pragma once
// Runs the real goca-bench binary (GB_CLI_BINARY) so exit codes and stdout/stderr are what a user sees, or the
// same CLI in-process (gb::cli::run; process start-up costs about a second here).
#include "harness/cli/registry.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace gb::test {

struct CliResult {
  int code;
  std::string out;  // stdout and stderr together
};

// A shell command line run with sh; its stdout and stderr (`2>&1` appended) and its raw wait status.
struct ShellResult {
  int status;
  std::string out;
};
inline ShellResult run_shell(const std::string& command) {
  const std::string cmd = command + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe.get())) > 0) out.append(buf.data(), n);
  const int status = pclose(pipe.release());
  return {status, out};
}

inline CliResult run_goca_bench(const std::string& args) {
  const auto r = run_shell(std::string(GB_CLI_BINARY) + " " + args);
  return {WEXITSTATUS(r.status), r.out};
}

// The real binary run from the repository root (the shipped configs name configs/... relative to it), each word
// quoted; what a kill or an abrupt exit needs (an in-process run cannot). `one_omp_thread`: OMP_NUM_THREADS=1,
// for runs whose results are compared with a run made by another process of the same thread count.
inline CliResult run_binary_in_repo(const std::vector<std::string>& args, bool one_omp_thread = false) {
  std::string cmd = "cd '" + std::string(GB_SOURCE_DIR) + "' && " + (one_omp_thread ? "OMP_NUM_THREADS=1 " : "") + "'" +
                    GB_CLI_BINARY + "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  const auto r = run_shell(cmd);
  return {WEXITSTATUS(r.status), r.out};
}

// gb::cli::run in this process with stdout and stderr captured at the file-descriptor level, so what a user would
// see (including the one-line error) is what the test sees. `args` are the words after `goca-bench` (no shell
// quoting: a word may hold spaces). `with_stderr` = false keeps only stdout.
inline CliResult run_goca_bench_in_process(const std::vector<std::string>& args, bool with_stderr = true) {
  std::vector<const char*> argv = {"goca-bench"};
  for (const auto& w : args) argv.push_back(w.c_str());
  std::fflush(stdout);
  std::fflush(stderr);
  std::cout.flush();
  FILE* out_file = std::tmpfile();
  FILE* err_file = std::tmpfile();
  const int saved_out = dup(1), saved_err = dup(2);
  dup2(fileno(out_file), 1);
  dup2(fileno(err_file), 2);
  const int code = gb::cli::run(static_cast<int>(argv.size()), argv.data());
  std::cout.flush();
  std::cerr.flush();
  std::fflush(stdout);
  std::fflush(stderr);
  dup2(saved_out, 1);
  dup2(saved_err, 2);
  close(saved_out);
  close(saved_err);
  auto slurp = [](FILE* f) {
    std::string s;
    std::rewind(f);
    std::array<char, 4096> buf{};
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) s.append(buf.data(), n);
    std::fclose(f);
    return s;
  };
  std::string out = slurp(out_file);
  std::string err = slurp(err_file);
  return {code, with_stderr ? out + err : out};
}

// The last line of a command's output (trailing newlines aside): where the commands print their result.
inline std::string last_line(std::string t) {
  while (!t.empty() && t.back() == '\n') t.pop_back();
  return t.substr(t.rfind('\n') == std::string::npos ? 0 : t.rfind('\n') + 1);
}

// The command line's bad-input contract: exit code 2 and one line (trailing newlines aside) naming `needle`.
inline void expect_exit2_one_line(const CliResult& r, const std::string& needle) {
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find(needle), std::string::npos) << r.out;
  std::string t = r.out;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  EXPECT_EQ(t.find('\n'), std::string::npos) << r.out;
}

// The same with `args` split on whitespace.
inline CliResult run_goca_bench_in_process(const std::string& args, bool with_stderr = true) {
  std::vector<std::string> words;
  std::istringstream in(args);
  for (std::string w; in >> w;) words.push_back(w);
  return run_goca_bench_in_process(words, with_stderr);
}

}  // namespace gb::test
