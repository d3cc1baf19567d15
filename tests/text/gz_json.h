#pragma once
// A gzip-compressed JSON golden (tools/parity writes them with Python's gzip module).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <zlib.h>

#include <string>

namespace gb::test {

inline nlohmann::json read_gz_json(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  EXPECT_TRUE(f != nullptr) << path;
  if (f == nullptr) return nlohmann::json();
  std::string s;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) s.append(buf, n);
  gzclose(f);
  return nlohmann::json::parse(s);
}

}  // namespace gb::test
