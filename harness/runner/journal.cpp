#include "harness/runner/journal.h"

#include "harness/core/errors.h"
#include "harness/core/excerpt.h"
#include "harness/core/log.h"
#include "harness/io/atomic_file.h"
#include "harness/io/json_io.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace gb::runner {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr std::string_view kPrefix = "{\"r\":";
constexpr std::string_view kSuffixHead = ",\"crc32\":\"";
constexpr size_t kSuffixSize = kSuffixHead.size() + 8 + 2;  // ,"crc32":"xxxxxxxx"}
// A confusion count above this is not a pixel count (and the sums could overflow int64).
constexpr int64_t kMaxCount = int64_t(1) << 48;
// A journal line above this is not one image's record.
constexpr size_t kMaxLineBytes = size_t(256) << 20;

template <typename... Args>
[[noreturn]] void bad(const std::string& file, int64_t line, fmt::format_string<Args...> what, Args&&... args) {
  fail_file(file, "line {}: {}", line, fmt::format(what, std::forward<Args>(args)...));
}

std::string hex8(uint32_t v) { return fmt::format("{:08x}", v); }

void write_all(int fd, const std::string& data, const std::string& path, const char* what) {
  const char* p = data.data();
  size_t n = data.size();
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), what);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

std::string Journal::encode_line(const json& record) {
  const std::string r = record.dump();
  return std::string(kPrefix) + r + std::string(kSuffixHead) + hex8(crc32(r)) + "\"}\n";
}

json Journal::decode_line(std::string_view line, const std::string& file, int64_t line_no) {
  if (line.size() < kPrefix.size() + kSuffixSize + 1 || line.substr(0, kPrefix.size()) != kPrefix ||
      line.substr(line.size() - kSuffixSize, kSuffixHead.size()) != kSuffixHead || line.back() != '}' ||
      line[line.size() - 2] != '"')
    bad(file, line_no,
        "not a goca-bench journal record (expected {{\"r\":...,\"crc32\":\"...\"}}, got {}); "
        "start afresh without --resume",
        excerpt(line));
  const std::string_view r = line.substr(kPrefix.size(), line.size() - kPrefix.size() - kSuffixSize);
  const std::string_view sum = line.substr(line.size() - 10, 8);
  if (sum != hex8(crc32(r)))
    bad(file, line_no,
        "checksum mismatch (stored {}, computed {}): the record was altered or damaged; "
        "start afresh without --resume",
        excerpt(sum), hex8(crc32(r)));
  return parse_json(r, file + ": line " + std::to_string(line_no));
}

namespace {

int64_t get_int(const json& v, const std::string& file, int64_t line, const char* what) {
  if (!v.is_number_integer()) bad(file, line, "{} must be an integer, got {}", what, v.type_name());
  return v.get<int64_t>();
}

void check_weights(json& obj, const std::string& file, int64_t line, const char* key, bool vectors) {
  if (!obj.is_object()) bad(file, line, "\"{}\" must be an object, got {}", key, obj.type_name());
  for (auto& item : obj.items()) {
    const std::string& name = item.key();
    json& w = item.value();
    auto number = [&](json& x) {
      if (x.is_null()) {
        x = std::numeric_limits<double>::quiet_NaN();  // NaN is written as null
      } else if (!x.is_number()) {
        bad(file, line, "\"{}\"[{}] must be a number, got {}", key, excerpt(name), x.type_name());
      }
    };
    if (vectors) {
      if (!w.is_array()) bad(file, line, "\"{}\"[{}] must be an array, got {}", key, excerpt(name), w.type_name());
      for (auto& x : w) number(x);
    } else {
      number(w);
    }
  }
}

}  // namespace

void Journal::validate(json& rec, const JournalSchema& s, const std::string& file, int64_t line) {
  if (!rec.is_object()) bad(file, line, "a record must be an object, got {}", rec.type_name());
  if (s.record) {
    if (!rec.contains("i")) bad(file, line, "missing \"i\" (the prompt index)");
    const int64_t i = get_int(rec["i"], file, line, "\"i\"");
    if (i < 0 || i >= s.num_images) bad(file, line, "prompt index {} out of range [0, {})", i, s.num_images);
    if (s.wanted && !s.wanted(i)) bad(file, line, "prompt index {} does not belong to this shard", i);
    s.record(rec, file, line);
    return;
  }
  static const std::set<std::string> known = {"i", "id", "skip", "v", "ex"};
  for (const auto& [k, v] : rec.items())
    if (!known.count(k)) bad(file, line, "unknown key {}", excerpt(k));
  if (!rec.contains("i")) bad(file, line, "missing \"i\" (the image index)");
  const int64_t i = get_int(rec["i"], file, line, "\"i\"");
  if (i < 0 || i >= s.num_images) bad(file, line, "image index {} out of range [0, {})", i, s.num_images);
  if (s.wanted && !s.wanted(i)) bad(file, line, "image index {} does not belong to this shard", i);
  bool skip = false;
  if (rec.contains("skip")) {
    if (!rec["skip"].is_boolean()) bad(file, line, "\"skip\" must be true or false, got {}", rec["skip"].type_name());
    skip = rec["skip"].get<bool>();
  }
  if (skip) {
    if (rec.size() != (rec.contains("id") ? 3u : 2u) || (rec.contains("id") && !rec["id"].is_string()))
      bad(file, line, "a skipped image's record has only \"i\" and \"skip\"");
    return;
  }
  if (!rec.contains("id") || !rec["id"].is_string() || rec["id"].get_ref<const std::string&>().empty())
    bad(file, line, "\"id\" must be a non-empty string");
  if (!rec.contains("v") || !rec["v"].is_array()) bad(file, line, "\"v\" must be an array");
  json& vs = rec["v"];
  if (vs.size() != s.variants.size())
    bad(file, line, "image {} has {} variants, this run has {}", i, vs.size(), s.variants.size());
  for (size_t v = 0; v < vs.size(); ++v) {
    json& vj = vs[v];
    if (!vj.is_object()) bad(file, line, "variant {} must be an object, got {}", v, vj.type_name());
    for (const auto& [k, x] : vj.items())
      if (k != "t" && k != "lw" && k != "hw") bad(file, line, "variant {}: unknown key {}", v, excerpt(k));
    if (!vj.contains("t") || !vj["t"].is_array()) bad(file, line, "variant {}: \"t\" must be an array", v);
    const json& t = vj["t"];
    if (t.size() != s.thresholds[v])
      bad(file, line, "variant {}: {} thresholds, this run has {}", v, t.size(), s.thresholds[v]);
    const int64_t C = s.num_classes[v];
    for (size_t k = 0; k < t.size(); ++k) {
      if (!t[k].is_array()) bad(file, line, "variant {} threshold {}: must be an array", v, k);
      for (const auto& e : t[k]) {
        if (!e.is_array() || e.size() != 3)
          bad(file, line, "variant {} threshold {}: entries must be [row, col, count]", v, k);
        const int64_t r = get_int(e[0], file, line, "a confusion row");
        const int64_t c = get_int(e[1], file, line, "a confusion column");
        const int64_t n = get_int(e[2], file, line, "a confusion count");
        if (r < 0 || r > C || c < 0 || c >= C)  // row C: ground truth outside [0, C) (harness/eval/confusion.h)
          bad(file, line, "variant {}: confusion cell (row {}, column {}) outside the {}x{} matrix", v, r, c, C + 1, C);
        if (n < 0 || n > kMaxCount) bad(file, line, "variant {}: confusion count {} out of range", v, n);
      }
    }
    if (!vj.contains("lw") || !vj.contains("hw")) bad(file, line, "variant {}: missing \"lw\" or \"hw\"", v);
    check_weights(vj["lw"], file, line, "lw", false);
    check_weights(vj["hw"], file, line, "hw", true);
  }
  if (rec.contains("ex")) {
    if (!rec["ex"].is_array()) bad(file, line, "\"ex\" must be an array");
    for (const auto& e : rec["ex"]) {
      if (!e.is_object() || e.size() != 2 || !e.contains("variant") || !e["variant"].is_string() ||
          !e.contains("png") || !e["png"].is_string())
        bad(file, line, "\"ex\" entries must be {{\"variant\": string, \"png\": string}}");
      const auto& name = e["variant"].get_ref<const std::string&>();
      if (std::find(s.variants.begin(), s.variants.end(), name) == s.variants.end())
        bad(file, line, "example of unknown variant {}", excerpt(name));
    }
  }
}

Journal::Journal(std::string path, const json& header, bool fresh, JournalSchema schema)
    : path_(std::move(path)), schema_(std::move(schema)) {
  if (schema_.thresholds.size() != schema_.variants.size() || schema_.num_classes.size() != schema_.variants.size())
    throw std::logic_error("JournalSchema: one threshold count and one class count per variant");
  {
    std::error_code ec;
    fs::create_directories(fs::path(path_).parent_path(), ec);
    if (ec) fail_file(path_, "cannot create the journal folder: {}", write_error_text(ec.value()));
  }
  uint64_t keep = 0;  // bytes of complete lines
  bool have_header = false;
  uint64_t file_size = 0;
  if (!fresh && fs::exists(path_)) {
    std::ifstream in(path_, std::ios::binary);
    if (!in) fail_file(path_, "cannot read the run journal");
    file_size = fs::file_size(path_);
    std::string line;
    int64_t line_no = 0;
    std::set<int64_t> seen;
    while (std::getline(in, line)) {
      ++line_no;
      if (in.eof()) break;  // no '\n': a torn last line, dropped below
      if (line.size() > kMaxLineBytes) bad(path_, line_no, "a record of {} bytes is implausible", line.size());
      json j = decode_line(line, path_, line_no);
      if (!have_header) {
        if (j != header)
          fail_file(path_,
                    "this journal belongs to another run (its header {} differs from {}); "
                    "start afresh without --resume or use another run name",
                    excerpt(j.dump(), 160), excerpt(header.dump(), 160));
        have_header = true;
      } else {
        validate(j, schema_, path_, line_no);
        const int64_t i = j["i"].get<int64_t>();
        if (!seen.insert(i).second) bad(path_, line_no, "image {} is journalled twice", i);
        replayed_.push_back(std::move(j));
      }
      keep += line.size() + 1;
    }
  }
  if (fresh || !have_header) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail_file(path_, "cannot create the run journal: {}", write_error_text(errno));
    try {
      write_all(fd_, encode_line(header), path_, "write");
      if (::fsync(fd_) != 0) throw std::system_error(errno, std::generic_category(), "fsync");
    } catch (const std::system_error& e) {
      ::close(fd_);
      fd_ = -1;
      ::unlink(path_.c_str());
      fail_file(path_, "cannot write the run journal: {}", write_error_text(e.code().value()));
    }
    return;
  }
  if (file_size != keep) {
    log::warn("{}: dropping a partial last record ({} bytes; the run was interrupted mid-write)", path_,
              file_size - keep);
    std::error_code ec;
    fs::resize_file(path_, keep, ec);
    if (ec) fail_file(path_, "cannot drop the partial last record: {}", write_error_text(ec.value()));
  }
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd_ < 0) fail_file(path_, "cannot append to the run journal: {}", write_error_text(errno));
}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

void Journal::append(const std::vector<json>& records) {
  std::string buf;
  for (const auto& r : records) buf += encode_line(r);
  struct stat st {};
  const off_t before = ::fstat(fd_, &st) == 0 ? st.st_size : -1;
  try {
    write_all(fd_, buf, path_, "write");
    if (::fsync(fd_) != 0) throw std::system_error(errno, std::generic_category(), "fsync");
  } catch (const std::system_error& e) {
    // Cut a partial write back off (best effort: a torn tail is dropped on --resume anyway).
    if (before >= 0 && ::ftruncate(fd_, before) == 0) ::fsync(fd_);
    fail_file(path_, "cannot append to the run journal: {}", write_error_text(e.code().value()));
  }
}

}  // namespace gb::runner
