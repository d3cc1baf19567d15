#include "datasets/dataset.h"

#include "harness/core/backbone.h"
#include "harness/core/strings.h"
#include "harness/io/read_file.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "harness/core/errors.h"
#include "harness/core/excerpt.h"
#include "harness/io/image_io.h"
#include "harness/io/json_io.h"

#ifdef GB_WITH_MATIO
#include <dlfcn.h>
#include <matio.h>
#include <zlib.h>

#include <cstring>
#include <iterator>

#include <mutex>
#endif

namespace gb::datasets {
namespace fs = std::filesystem;

const char* to_string(IssueKind kind) {
  switch (kind) {
    case IssueKind::MissingFile: return "missing file";
    case IssueKind::Unreadable: return "unreadable file";
    case IssueKind::SizeMismatch: return "label/image size mismatch";
    case IssueKind::OutOfRange: return "class id out of range";
    case IssueKind::MissingCaption: return "image without caption";
    case IssueKind::PaperQuirk: return "paper-protocol failure";
    case IssueKind::Other: return "other";
  }
  return "other";
}

// ---- report -----------------------------------------------------------------------------------------------

std::string DatasetIssue::line() const {
  if (!file.empty()) return file + ": " + message;
  if (!id.empty()) return id + ": " + message;
  return message;
}

void DatasetReport::skip(DatasetIssue issue) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!issue.id.empty() && !seen_.insert("skip\n" + issue.id).second) return;  // a sample loaded twice counts once
  skipped_.push_back(std::move(issue));
}

void DatasetReport::note(const std::string& kind, DatasetIssue issue) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!issue.id.empty() && !seen_.insert(kind + "\n" + issue.id).second) return;
  notes_[kind].push_back(std::move(issue));
}

std::vector<DatasetIssue> DatasetReport::skipped() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return skipped_;
}

size_t DatasetReport::skipped_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return skipped_.size();
}

std::map<std::string, std::vector<DatasetIssue>> DatasetReport::notes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return notes_;
}

std::string DatasetReport::summary(size_t max_lines) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  auto section = [&](const std::string& title, const std::vector<DatasetIssue>& v) {
    out += fmt::format("{}: {}\n", title, v.size());
    for (size_t i = 0; i < v.size() && i < max_lines; ++i) out += "  " + v[i].line() + "\n";
    if (v.size() > max_lines) out += fmt::format("  ... and {} more\n", v.size() - max_lines);
  };
  if (!skipped_.empty()) section("skipped (bad input, on_error: skip)", skipped_);
  for (const auto& [kind, v] : notes_) section(kind, v);
  return out;
}

// ---- helpers ----------------------------------------------------------------------------------------------

namespace {

std::string stem_of(const std::string& file_name) {
  const auto dot = file_name.rfind('.');
  return dot == std::string::npos ? file_name : file_name.substr(0, dot);
}

std::string default_suffix(LabelSource s) {
  switch (s) {
    case LabelSource::Mat: return ".mat";
    case LabelSource::LabelIds: return "_gtFine_labelIds.png";
    case LabelSource::LabelTrainIds: return "_gtFine_labelTrainIds.png";
    default: return ".png";
  }
}

// Python glob('<dir>/*'): the non-hidden entries of one directory, as full paths (files only here).
std::vector<std::string> list_files(const std::string& dir, const std::string& must_end_with) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    if (!it->is_regular_file(ec)) continue;
    if (!must_end_with.empty() && !gb::ends_with(name, must_end_with)) continue;
    out.push_back(it->path().string());
  }
  if (ec) fail_file(dir, "cannot list folder ({})", ec.message());
  return out;
}

std::vector<std::string> read_split(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail_file(path, "cannot open split file");
  std::vector<std::string> ids;
  std::string line;
  while (std::getline(in, line)) {
    // Python's rstrip(): trailing whitespace (incl. '\r') goes; blank lines carry no id.
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    if (!line.empty()) ids.push_back(line);
  }
  if (ids.empty()) fail_file(path, "split file lists no ids");
  return ids;
}

[[noreturn]] void out_of_range(const std::string& file, int64_t value, int64_t y, int64_t x,
                               const std::string& allowed) {
  fail_file(file, "label value {} at row {}, column {} is outside {}", value, y, x, allowed);
}

// Applies a lookup table to an int64 label; values outside the table or mapped to -1 are errors.
at::Tensor apply_lut(const at::Tensor& raw, const std::vector<int64_t>& lut, const std::string& file,
                     const std::string& allowed) {
  at::Tensor in = raw.to(at::kLong).contiguous();
  at::Tensor out = at::empty_like(in);
  const int64_t* src = in.data_ptr<int64_t>();
  int64_t* dst = out.data_ptr<int64_t>();
  const int64_t n = in.numel();
  const int64_t w = in.dim() == 2 ? in.size(1) : 1;
  const int64_t size = static_cast<int64_t>(lut.size());
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = src[i];
    const int64_t m = (v >= 0 && v < size) ? lut[static_cast<size_t>(v)] : -1;
    if (m < 0) out_of_range(file, v, i / w, i % w, allowed);
    dst[i] = m;
  }
  return out;
}

}  // namespace

// ---- label decoding ---------------------------------------------------------------------------------------

at::Tensor map_label(const DatasetConfig& c, LabelSource source, const at::Tensor& raw, const std::string& file) {
  const bool paper = c.protocol == Protocol::paper;
  std::vector<int64_t> lut;
  std::string allowed;
  switch (c.kind) {
    case DatasetKind::Voc:
      // paper: label[label > 20] = 0 (the 255 boundary becomes background). standard: 0..20, 255 ignored.
      lut.assign(256, paper ? 0 : -1);
      for (int64_t v = 0; v <= 20; ++v) lut[v] = v;
      if (!paper) lut[255] = kIgnoreIndex;
      allowed = paper ? "[0, 255]" : "[0, 20] and 255";
      break;
    case DatasetKind::Ade20k:
      // paper: label[label > 150] = 0, 0 kept as a class. standard: reduce_zero_label (0 -> 255, v -> v - 1).
      lut.assign(paper ? 65536 : 151, paper ? 0 : -1);
      for (int64_t v = 0; v <= 150; ++v) lut[v] = paper ? v : (v == 0 ? kIgnoreIndex : v - 1);
      allowed = paper ? "[0, 65535]" : "[0, 150]";
      break;
    case DatasetKind::Context:
      if (source == LabelSource::Mat) {
        // raw 459-class ids; every id outside the 59 (and 0) -> background (paper) / ignore (standard).
        lut.assign(460, -1);
        for (int64_t raw_id = 0; raw_id <= 459; ++raw_id) {
          if (paper) {
            lut[raw_id] = context_raw_to_paper(raw_id);
          } else {
            const int64_t m = context_raw_to_mmseg(raw_id);
            lut[raw_id] = m == 0 ? kIgnoreIndex : m - 1;
          }
        }
        allowed = "the 459-class LabelMap ids [0, 459]";
      } else {
        // mmseg SegmentationClassContext PNG: 0 background, 1..59 in mmseg (alphabetical) order.
        lut.assign(256, -1);
        for (int64_t m = 0; m < 60; ++m) lut[m] = paper ? context_mmseg_to_paper(m) : (m == 0 ? kIgnoreIndex : m - 1);
        lut[255] = paper ? 0 : kIgnoreIndex;
        allowed = "[0, 59] and 255";
      }
      break;
    case DatasetKind::CocoObject:
      // 80 things + background PNG: 0 background, 1..80 things, 255 unlabeled.
      lut.assign(256, -1);
      for (int64_t v = 0; v <= 80; ++v) lut[v] = v;
      lut[255] = paper ? 0 : kIgnoreIndex;
      allowed = "[0, 80] and 255";
      break;
    case DatasetKind::Cityscapes:
      if (source == LabelSource::LabelIds) {
        // paper: mapping_20 (every value not in the table -> 0); standard: labelId -> trainId (others 255).
        lut.assign(256, 0);
        for (int64_t v = 0; v < 256; ++v) lut[v] = paper ? cityscapes_label_to_paper(v) : cityscapes_label_to_train(v);
        allowed = "[0, 255]";
      } else {
        lut.assign(256, -1);
        for (int64_t v = 0; v < 19; ++v) lut[v] = paper ? v + 1 : v;
        lut[255] = paper ? 0 : kIgnoreIndex;
        allowed = "trainIds [0, 18] and 255";
      }
      break;
    case DatasetKind::CocoStuff: {
      // Fine class of each stored value (-1: unlabeled). png: category id 1..182 (0 unlabeled); stuffthingmaps: the
      // fine index 0..181 (255 unlabeled).
      const bool ids = source == LabelSource::Png;
      auto fine_of = [&](int64_t v) -> int64_t {
        if (ids) return v >= 1 && v <= kCocoStuffFine ? v - 1 : (v == 0 ? -1 : -2);
        return v >= 0 && v < kCocoStuffFine ? v : (v == 255 ? -1 : -2);
      };
      // paper: encode_labels(mapping_coco) (value k+1 -> coarse(k)+1, 0 and 255 -> 0, every other value -> 0), then
      // 15 -> 3 and 16 -> 4. standard: fine -> coarse (0..26), unlabeled -> 255, anything else is bad input.
      lut.assign(256, paper ? 0 : -1);
      for (int64_t v = 0; v < 256; ++v) {
        const int64_t fine = fine_of(v);
        if (fine >= 0) {
          const int64_t coarse = coco_stuff_fine_to_coarse(fine);
          lut[v] = paper ? coco_stuff_coarse_to_paper(coarse) : coarse;
        } else if (fine == -1 && !paper) {
          lut[v] = kIgnoreIndex;
        }
      }
      allowed = paper ? "[0, 255]" : ids ? "category ids [0, 182]" : "fine classes [0, 181] and 255";
      break;
    }
  }
  return apply_lut(raw, lut, file, allowed);
}

at::Tensor map_panoptic(const at::Tensor& segment_ids, const std::vector<std::pair<int64_t, int64_t>>& segments,
                        Protocol protocol, const std::string& file) {
  at::Tensor in = segment_ids.to(at::kLong).contiguous();
  const int64_t n = in.numel();
  const int64_t w = in.size(1);
  const int64_t* src = in.data_ptr<int64_t>();
  // Distinct segment ids present in the image.
  if (n == 0) fail_file(file, "empty panoptic label");
  std::unordered_map<int64_t, int64_t> value_map;
  for (int64_t i = 0; i < n; ++i)
    if (i == 0 || src[i] != src[i - 1]) value_map.emplace(src[i], src[i]);
  std::unordered_map<int64_t, bool> listed;
  for (const auto& [seg, cat] : segments) {
    const int64_t cls = coco_category_to_class(cat);
    if (cls < 0) fail_file(file, "segment {} has category_id {}, which is not a COCO panoptic category", seg, cat);
    listed[seg] = true;
    if (protocol == Protocol::paper) {
      // label[label == seg] = cls, in place and in order: a pixel already rewritten to a class id equal to a later
      // segment id is rewritten again (Q14).
      for (auto& [orig, cur] : value_map)
        if (cur == seg) cur = cls;
    } else {
      auto it = value_map.find(seg);
      if (it != value_map.end() && it->second == seg) it->second = cls;  // first listing of an id wins
    }
  }
  // Final value per distinct id; -3 marks ids that are bad input (standard: unlisted; paper: not a class id).
  for (auto& [orig, cur] : value_map) {
    if (protocol == Protocol::standard) {
      if (orig == 0) cur = kIgnoreIndex;
      else if (!listed.count(orig)) cur = -3;
    } else if (cur < 0 || cur > 80) {
      cur = -3;  // paper: never listed and not a class id
    }
  }
  at::Tensor out = at::empty_like(in);
  int64_t* dst = out.data_ptr<int64_t>();
  int64_t last_v = src[0], last_m = value_map.at(src[0]);  // labels are runs of equal ids
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = src[i];
    if (v != last_v) {
      last_v = v;
      last_m = value_map.at(v);
    }
    if (last_m == -3)
      fail_file(file, "segment id {} (at row {}, column {}) is not listed in the image's segments_info{}", v, i / w,
                i % w, protocol == Protocol::paper ? " and is not a class id [0, 80]" : "");
    dst[i] = last_m;
  }
  return out;
}

#ifdef GB_WITH_MATIO
namespace {
// matio and the HDF5 library under it (v7.3 MAT files) print their own diagnostics to stderr; a corrupt file
// must give goca-bench's one-line error instead. matio's messages go to a per-thread buffer that the error
// quotes (shortened); HDF5's automatic error-stack printing is switched off through the HDF5 library matio
// already loaded (looked up at run time: goca-bench does not link HDF5 itself).
thread_local std::string t_matio_message;

void matio_log(int level, char* message) {
  if (message && (level & (MATIO_LOG_LEVEL_ERROR | MATIO_LOG_LEVEL_CRITICAL))) t_matio_message = message;
}

void silence_mat_libraries() {
  static std::once_flag once;
  std::call_once(once, [] {
    Mat_LogInitFunc("goca-bench", matio_log);
    using SetAuto = int (*)(int64_t, void*, void*);  // herr_t H5Eset_auto2(hid_t, H5E_auto2_t, void*)
    if (auto f = reinterpret_cast<SetAuto>(::dlsym(RTLD_DEFAULT, "H5Eset_auto2")))
      f(0 /* H5E_DEFAULT */, nullptr, nullptr);
  });
}

// libmatio trusts the sizes written in a file: a 360-byte file whose array-flags element claims 788 MB made it
// allocate and clear 4 GB. Before libmatio sees a MAT v5 file, every element's size is checked against the
// bytes that hold it: top-level elements against the file, the sub-elements of an uncompressed matrix against
// the matrix, and the element count its dimensions declare against what its bytes can hold (a compressed
// matrix's deflate stream expands at most 1032:1). v7.3 (HDF5) files are left to libmatio.
void check_mat5_sizes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (b.size() < 128) fail_file(path, "not a MAT file ({} bytes, shorter than the 128-byte header)", b.size());
  const bool swap = b[126] == 'M' && b[127] == 'I';
  if (!swap && !(b[126] == 'I' && b[127] == 'M')) fail_file(path, "not a MAT file (no endian indicator in the header)");
  auto u32 = [&](const std::string& s, size_t at) {
    uint32_t v;
    std::memcpy(&v, s.data() + at, 4);
    return swap ? __builtin_bswap32(v) : v;
  };
  if ((swap ? (uint8_t(b[125]) << 8 | uint8_t(b[124])) : (uint8_t(b[124]) | uint8_t(b[125]) << 8)) == 0x0200) return;
  // Checks the sub-elements of a matrix held in m[begin, end) (uncompressed bytes); `limit` bounds the
  // element count its dimensions may declare.
  auto check_matrix = [&](const std::string& m, size_t begin, size_t end, uint64_t limit, size_t at) {
    size_t p = begin;
    int index = 0;
    while (p + 8 <= end) {
      const uint32_t type = u32(m, p);
      if (type >> 16) {  // small data element: 4 bytes of tag, up to 4 of data
        p += 8;
      } else {
        const uint64_t n = u32(m, p + 4);
        if (n > end - p - 8)
          fail_file(path, "corrupt MAT file: an element of the matrix at offset {} claims {} bytes, {} remain", at, n,
                    end - p - 8);
        if (index == 1) {  // dimensions: int32 values
          uint64_t count = 1;
          for (uint64_t k = 0; k + 4 <= n; k += 4) {
            const uint64_t d = u32(m, p + 8 + k);
            count = (d != 0 && count > limit / d) ? limit + 1 : count * d;
          }
          if (count > limit)
            fail_file(path,
                      "corrupt MAT file: the matrix at offset {} declares more elements than its {} bytes can hold", at,
                      end - begin);
        }
        p += 8 + ((n + 7) & ~uint64_t(7));
      }
      ++index;
    }
  };
  size_t p = 128;
  while (p + 8 <= b.size()) {
    const uint32_t type = u32(b, p);
    if (type >> 16) {
      p += 8;
      continue;
    }
    const uint64_t n = u32(b, p + 4);
    if (n > b.size() - p - 8)
      fail_file(path, "corrupt MAT file: the element at offset {} claims {} bytes, the file has {} after it", p, n,
                b.size() - p - 8);
    if (type == 14) {  // miMATRIX
      check_matrix(b, p + 8, p + 8 + n, n, p);
    } else if (type == 15) {  // miCOMPRESSED: inflate the start (the matrix tag, flags, dimensions)
      std::string head(4096, '\0');
      z_stream zs{};
      if (inflateInit(&zs) != Z_OK) fail_file(path, "cannot initialise zlib");
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(b.data() + p + 8));
      zs.avail_in = static_cast<uInt>(n);
      zs.next_out = reinterpret_cast<Bytef*>(head.data());
      zs.avail_out = static_cast<uInt>(head.size());
      const int rc = inflate(&zs, Z_SYNC_FLUSH);
      head.resize(zs.total_out);
      inflateEnd(&zs);
      if ((rc != Z_OK && rc != Z_STREAM_END) || head.size() < 8)
        fail_file(path, "corrupt MAT file: the compressed element at offset {} does not inflate", p);
      if (u32(head, 0) == 14) {
        const uint64_t inner = std::min<uint64_t>(u32(head, 4), head.size() - 8);
        check_matrix(head, 8, 8 + inner, n * 1032 + 64, p);
      }
    }
    p += 8 + n;
  }
}

std::string matio_detail() {
  std::string m = std::move(t_matio_message);
  t_matio_message.clear();
  return m.empty() ? "" : " (matio: " + excerpt(m, 120) + ")";
}
}  // namespace
#endif

at::Tensor read_mat_variable(const std::string& path, const std::string& variable) {
#ifdef GB_WITH_MATIO
  if (!fs::exists(path)) fail_file(path, "no such file");
  silence_mat_libraries();
  check_mat5_sizes(path);
  t_matio_message.clear();
  mat_t* mat = Mat_Open(path.c_str(), MAT_ACC_RDONLY);
  if (!mat) fail_file(path, "not a readable MAT file{}", matio_detail());
  matvar_t* var = Mat_VarRead(mat, variable.c_str());
  if (!var) {
    Mat_Close(mat);
    fail_file(path, "MAT file has no readable variable '{}'{}", variable, matio_detail());
  }
  struct Guard {
    mat_t* m;
    matvar_t* v;
    ~Guard() {
      Mat_VarFree(v);
      Mat_Close(m);
    }
  } guard{mat, var};
  if (var->rank != 2) fail_file(path, "'{}' has rank {}, expected a 2-D label map", variable, var->rank);
  if (var->isComplex) fail_file(path, "'{}' is complex, expected a real label map", variable);
  if (!var->data) fail_file(path, "'{}' has no data", variable);
  const int64_t rows = static_cast<int64_t>(var->dims[0]);
  const int64_t cols = static_cast<int64_t>(var->dims[1]);
  at::Tensor out = at::empty({rows, cols}, at::kLong);
  int64_t* dst = out.data_ptr<int64_t>();
  auto fill = [&](auto* data) {
    // MATLAB stores column-major: element (r, c) at data[r + c * rows].
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        const double v = static_cast<double>(data[r + c * rows]);
        // Integers up to 2^53 (exact in a double); NaN, infinities and larger values are refused before the cast.
        if (!(std::fabs(v) <= 9007199254740992.0) || v != std::trunc(v))
          fail_file(path, "'{}' holds the value {} at row {}, column {}, which is not an integer label", variable, v, r,
                    c);
        dst[r * cols + c] = static_cast<int64_t>(v);
      }
  };
  switch (var->class_type) {
    case MAT_C_DOUBLE: fill(static_cast<const double*>(var->data)); break;
    case MAT_C_SINGLE: fill(static_cast<const float*>(var->data)); break;
    case MAT_C_INT8: fill(static_cast<const int8_t*>(var->data)); break;
    case MAT_C_UINT8: fill(static_cast<const uint8_t*>(var->data)); break;
    case MAT_C_INT16: fill(static_cast<const int16_t*>(var->data)); break;
    case MAT_C_UINT16: fill(static_cast<const uint16_t*>(var->data)); break;
    case MAT_C_INT32: fill(static_cast<const int32_t*>(var->data)); break;
    case MAT_C_UINT32: fill(static_cast<const uint32_t*>(var->data)); break;
    case MAT_C_INT64: fill(static_cast<const int64_t*>(var->data)); break;
    case MAT_C_UINT64: fill(static_cast<const uint64_t*>(var->data)); break;
    default:
      fail_file(path, "'{}' is not a numeric array (matio class {})", variable, static_cast<int>(var->class_type));
  }
  return out;
#else
  (void)variable;
  fail_file(path,
            "this build has no .mat support (libmatio was not found at configure time); use the mmseg "
            "SegmentationClassContext PNG labels (labels: {{source: png}}) or rebuild with libmatio");
#endif
}

LabelStats label_stats(const at::Tensor& label) {
  at::Tensor l = label.to(at::kLong).contiguous();
  const int64_t* p = l.data_ptr<int64_t>();
  LabelStats s;
  for (int64_t i = 0, n = l.numel(); i < n; ++i) {
    auto [it, inserted] = s.pixels.emplace(p[i], 0);
    ++it->second;
    if (inserted) s.first_seen.push_back(p[i]);
  }
  for (const auto& [v, count] : s.pixels) s.ascending.push_back(v);
  return s;
}

// ---- the reader -------------------------------------------------------------------------------------------

struct Dataset::Impl {
  // COCO panoptic: label file name -> (segment id, category_id) list, plus the json's last annotation (Q14).
  std::unordered_map<std::string, std::vector<std::pair<int64_t, int64_t>>> panoptic;
  std::vector<std::pair<int64_t, int64_t>> panoptic_last;
  std::string panoptic_json;
  bool has_panoptic_last = false;
};

Dataset::~Dataset() = default;

namespace {

std::vector<std::pair<int64_t, int64_t>> read_segments(const nlohmann::json& anno, const std::string& json_path) {
  std::vector<std::pair<int64_t, int64_t>> segs;
  const auto it = anno.find("segments_info");
  if (it == anno.end() || !it->is_array()) fail_file(json_path, "an annotation has no \"segments_info\" list");
  for (const auto& s : *it) {
    if (!s.is_object() || !s.contains("id") || !s.contains("category_id") || !s["id"].is_number_integer() ||
        !s["category_id"].is_number_integer())
      fail_file(json_path, "a segments_info entry lacks integer \"id\" and \"category_id\"");
    segs.emplace_back(s["id"].get<int64_t>(), s["category_id"].get<int64_t>());
  }
  return segs;
}

// --limit: the first `limit` items (all when limit <= 0).
template <typename T>
void apply_limit(const DatasetConfig& c, std::vector<T>& v) {
  if (c.limit > 0 && static_cast<int64_t>(v.size()) > c.limit) v.resize(static_cast<size_t>(c.limit));
}

// VOC, Context: ids from the split file (reversed under the paper protocol), <id>.jpg, label <id><suffix>.
std::vector<SampleEntry> entries_from_split(const DatasetConfig& c, const std::string& images_dir,
                                            const std::string& label_dir, const std::string& suffix) {
  std::vector<SampleEntry> entries;
  auto ids = read_split(resolve_split_file(c));
  if (c.reverse_split) std::reverse(ids.begin(), ids.end());
  apply_limit(c, ids);
  for (const auto& id : ids) {
    SampleEntry e;
    e.image_path = (fs::path(images_dir) / (id + ".jpg")).string();
    e.id = gb::image_id_of(e.image_path);
    e.label_path = (fs::path(label_dir) / (id + suffix)).string();
    entries.push_back(std::move(e));
  }
  return entries;
}

// COCO-Object, Cityscapes, ADE20K, COCO-Stuff: sorted glob of the images (Cityscapes: one city folder level).
std::vector<SampleEntry> entries_from_listing(const DatasetConfig& c, const std::string& images_dir,
                                              const std::string& label_dir, const std::string& suffix) {
  std::vector<SampleEntry> entries;
  std::vector<std::string> images;
  if (c.kind == DatasetKind::Cityscapes) {
    std::vector<std::string> cities;
    std::error_code ec;
    for (fs::directory_iterator it(images_dir, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (!name.empty() && name[0] != '.' && it->is_directory(ec)) cities.push_back(it->path().string());
    }
    for (const auto& city : cities) {
      auto files = list_files(city, "");
      images.insert(images.end(), files.begin(), files.end());
    }
  } else {
    // COCO-Object `*jpg`, COCO-Stuff `*.jpg` (its labels may sit in the same folder).
    images = list_files(images_dir, c.kind == DatasetKind::CocoObject  ? "jpg"
                                    : c.kind == DatasetKind::CocoStuff ? ".jpg"
                                                                       : "");
  }
  std::sort(images.begin(), images.end());  // Python sorted(): code point order of the full paths
  apply_limit(c, images);
  for (const auto& path : images) {
    SampleEntry e;
    e.id = gb::image_id_of(path);
    e.image_path = path;
    if (c.kind == DatasetKind::Cityscapes) {
      const std::string tail = "_leftImg8bit" + fs::path(path).extension().string();
      const std::string prefix = gb::ends_with(e.id, tail) ? e.id.substr(0, e.id.size() - tail.size()) : stem_of(e.id);
      const std::string city = fs::path(path).parent_path().filename().string();
      e.label_path = (fs::path(label_dir) / city / (prefix + suffix)).string();
    } else {
      e.label_path = (fs::path(label_dir) / (stem_of(e.id) + suffix)).string();
    }
    entries.push_back(std::move(e));
  }
  if (entries.empty()) fail_file(images_dir, "no images found");
  return entries;
}

}  // namespace

std::unique_ptr<Dataset> Dataset::open(const DatasetConfig& config, const CaptionFile* captions) {
  std::unique_ptr<Dataset> ds(new Dataset());
  ds->config_ = config;
  ds->impl_ = std::make_unique<Impl>();
  const DatasetConfig& c = ds->config_;
  ds->classes_ = &class_table(c.kind, c.protocol);
  if (c.root.empty()) fail("dataset {}: no root folder given (set `root:` in the config or pass --root)", c.name());
  if (!fs::is_directory(c.root)) fail_file(c.root, "dataset root folder does not exist");
  if (!label_source_applies(c.kind, c.label_source))
    fail("label source '{}' does not apply to {}", to_string(c.label_source), c.name());
  ds->source_ = resolve_label_source(c);
  const bool paper = c.protocol == Protocol::paper;
  const std::string images_dir = resolve_images_dir(c);
  const std::string label_dir = resolve_label_dir(c);
  const std::string suffix = c.label_suffix.empty() ? default_suffix(ds->source_) : c.label_suffix;
  if (!fs::is_directory(images_dir))
    fail_file(
        images_dir, "image folder does not exist{}",
        c.kind == DatasetKind::Context ? " (for Pascal-Context pass the VOC2012 JPEGImages folder with --images)" : "");
  if (!fs::is_directory(label_dir)) fail_file(label_dir, "label folder does not exist");

  std::vector<SampleEntry> entries = c.split.empty() ? entries_from_listing(c, images_dir, label_dir, suffix)
                                                     : entries_from_split(c, images_dir, label_dir, suffix);

  // Paper, Context: ids without a label file are dropped after the limit (PascalContextDataset.__init__).
  if (c.kind == DatasetKind::Context && paper) {
    std::vector<SampleEntry> kept;
    for (auto& e : entries) {
      if (fs::exists(e.label_path)) kept.push_back(std::move(e));
      else
        ds->report_.note(kNoteContextNoMat, {e.id, e.label_path, "no label file; dropped as the paper's loader does",
                                             IssueKind::PaperQuirk});
    }
    entries = std::move(kept);
  }

  // VOC GT classes from Annotations/<id>.xml (paper), unless the folder is absent.
  if (c.kind == DatasetKind::Voc && c.gt_from_xml) {
    const fs::path ann = fs::path(c.root) / "Annotations";
    if (fs::is_directory(ann)) {
      for (auto& e : entries) e.xml_path = (ann / (stem_of(e.id) + ".xml")).string();
    } else {
      ds->report_.note(kNoteVocGtFromLabel,
                       {"", ann.string(), "folder absent; GT classes come from the label values", IssueKind::Other});
    }
  }

  // COCO panoptic annotations.
  if (ds->source_ == LabelSource::Panoptic) {
    const std::string json_path = resolve_panoptic_json(c);
    if (!fs::is_regular_file(json_path)) fail_file(json_path, "cannot open the panoptic annotation file");
    const nlohmann::json doc = read_json_file(json_path);
    if (!doc.is_object() || !doc.contains("annotations") || !doc["annotations"].is_array())
      fail_file(json_path, "expected an object with an \"annotations\" list");
    for (const auto& anno : doc["annotations"]) {
      if (!anno.is_object() || !anno.contains("file_name") || !anno["file_name"].is_string())
        fail_file(json_path, "an annotation has no \"file_name\"");
      auto segs = read_segments(anno, json_path);
      ds->impl_->panoptic.emplace(anno["file_name"].get<std::string>(), segs);  // first match wins, as the loop breaks
      ds->impl_->panoptic_last = std::move(segs);
      ds->impl_->has_panoptic_last = true;
    }
    ds->impl_->panoptic_json = json_path;
  }

  // Captions.
  if (captions) {
    ds->captions_ = captions;
  } else if (!c.captions.empty()) {
    ds->owned_captions_ = std::make_unique<CaptionFile>(CaptionFile::load(c.captions));
    ds->captions_ = ds->owned_captions_.get();
  }
  if (ds->captions_ && c.missing_caption != MissingCaption::Ignore) {
    std::vector<SampleEntry> kept;
    for (auto& e : entries) {
      if (ds->captions_->contains(e.id)) {
        kept.push_back(std::move(e));
        continue;
      }
      DatasetIssue issue{
          e.id, ds->captions_->path(),
          "no caption for image '" + e.id + "' (add it to the caption file, or set missing_caption: skip)",
          IssueKind::MissingCaption};
      if (c.missing_caption == MissingCaption::Fail) throw SampleError(IssueKind::MissingCaption, issue.line());
      ds->report_.skip(std::move(issue));
    }
    entries = std::move(kept);
  }
  ds->entries_ = std::move(entries);
  return ds;
}

namespace {

std::vector<int64_t> voc_xml_classes(const std::string& path) {
  const std::string xml = read_whole_file(path, "annotation (Annotations/<id>.xml)");
  // <object> ... <name>NAME</name> ... </object>; the first <name> inside each object is the class
  // (ElementTree's obj.find('name'): the direct child, which VOC writes before any <part>).
  std::vector<int64_t> out;
  size_t pos = 0;
  bool any_object = false;
  while ((pos = xml.find("<object>", pos)) != std::string::npos) {
    any_object = true;
    const size_t end = xml.find("</object>", pos);
    if (end == std::string::npos) fail_file(path, "malformed annotation: <object> without </object>");
    const size_t n0 = xml.find("<name>", pos);
    const size_t n1 = n0 == std::string::npos ? n0 : xml.find("</name>", n0);
    if (n0 == std::string::npos || n1 == std::string::npos || n0 > end)
      fail_file(path, "malformed annotation: <object> without <name>");
    std::string name = xml.substr(n0 + 6, n1 - n0 - 6);
    const auto b = name.find_first_not_of(" \t\r\n");
    const auto e = name.find_last_not_of(" \t\r\n");
    name = b == std::string::npos ? "" : name.substr(b, e - b + 1);
    const int64_t cls = voc_xml_name_to_class(name);
    if (cls < 0) fail_file(path, "unknown VOC class name '{}'", name);
    if (std::find(out.begin(), out.end(), cls) == out.end()) out.push_back(cls);
    pos = end;
  }
  (void)any_object;
  return out;
}

}  // namespace

namespace {

[[noreturn]] void raise(IssueKind kind, const std::string& message) { throw SampleError(kind, message); }

// Runs f; a plain UserError from it becomes a SampleError of `kind`.
template <typename F>
auto as_kind(IssueKind kind, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const SampleError&) {
    throw;
  } catch (const UserError& e) {
    raise(kind, e.what());
  }
}

}  // namespace

Sample Dataset::load_or_throw(size_t i) const {
  const SampleEntry& e = entries_.at(i);
  const DatasetConfig& c = config_;
  Sample s;
  s.id = e.id;
  s.image_path = e.image_path;
  s.label_path = e.label_path;
  if (!fs::exists(e.image_path)) raise(IssueKind::MissingFile, e.image_path + ": image file missing");
  if (!fs::exists(e.label_path))
    raise(IssueKind::MissingFile, e.label_path + ": label file missing (image " + e.id + ")");
  if (!e.xml_path.empty() && !fs::exists(e.xml_path))
    raise(IssueKind::MissingFile, e.xml_path + ": annotation file missing (image " + e.id + ")");
  s.image = as_kind(IssueKind::Unreadable, [&] { return read_image_rgb(e.image_path); });
  s.height = s.image.size(0);
  s.width = s.image.size(1);

  // Raw label as stored.
  at::Tensor raw;
  const std::vector<std::pair<int64_t, int64_t>>* segs = nullptr;
  switch (source_) {
    case LabelSource::Mat:
      raw = as_kind(IssueKind::Unreadable, [&] { return read_mat_variable(e.label_path, "LabelMap"); });
      break;
    case LabelSource::Panoptic: {
      at::Tensor rgb = as_kind(IssueKind::Unreadable, [&] { return read_image_rgb(e.label_path); }).to(at::kLong);
      raw = rgb.select(2, 0) + 256 * rgb.select(2, 1) + 65536 * rgb.select(2, 2);
      const std::string file_name = fs::path(e.label_path).filename().string();
      auto it = impl_->panoptic.find(file_name);
      if (it != impl_->panoptic.end()) {
        segs = &it->second;
      } else if (c.protocol == Protocol::paper && impl_->has_panoptic_last) {
        segs = &impl_->panoptic_last;
        report_.note(
            kNoteCocoAnnotationReused,
            {e.id, e.label_path, "not in " + impl_->panoptic_json + "; the last annotation's segments are used",
             IssueKind::PaperQuirk});
      } else {
        raise(IssueKind::MissingFile,
              e.label_path + ": no annotation for '" + file_name + "' in " + impl_->panoptic_json);
      }
      break;
    }
    default: raw = as_kind(IssueKind::Unreadable, [&] { return read_label_png(e.label_path); }); break;
  }
  if (raw.dim() != 2 || raw.size(0) != s.height || raw.size(1) != s.width)
    raise(IssueKind::SizeMismatch,
          fmt::format("{}: label is {}x{} (WxH) but image {} is {}x{}", e.label_path, raw.dim() == 2 ? raw.size(1) : -1,
                      raw.dim() == 2 ? raw.size(0) : -1, e.image_path, s.width, s.height));
  s.label = as_kind(IssueKind::OutOfRange, [&] {
    return segs ? map_panoptic(raw, *segs, c.protocol, e.label_path) : map_label(c, source_, raw, e.label_path);
  });

  const LabelStats stats = label_stats(s.label);
  const bool paper = c.protocol == Protocol::paper;
  if (paper && c.kind == DatasetKind::Ade20k && !stats.pixels.count(0))
    raise(IssueKind::PaperQuirk,
          e.label_path +
              ": no pixel of class 0: the paper's captioner raises KeyError here (existent_objects_gt.remove(0), "
              "quirk Q13); use protocol: standard or on_error: skip");
  if (!e.xml_path.empty()) {
    s.gt_first_seen = as_kind(IssueKind::Unreadable, [&] { return voc_xml_classes(e.xml_path); });
    s.gt_first_seen.erase(std::remove(s.gt_first_seen.begin(), s.gt_first_seen.end(), 0), s.gt_first_seen.end());
    s.gt_classes = s.gt_first_seen;
    std::sort(s.gt_classes.begin(), s.gt_classes.end());
  } else {
    auto keep = [&](int64_t v) {
      if (v == classes_->ignore_index) return false;
      if (v == 0 && classes_->background_is_class0) return false;
      return true;
    };
    for (int64_t v : stats.ascending)
      if (keep(v)) s.gt_classes.push_back(v);
    for (int64_t v : stats.first_seen)
      if (keep(v)) s.gt_first_seen.push_back(v);
  }
  return s;
}

std::optional<Sample> Dataset::load(size_t i) const {
  if (config_.on_error == OnError::Fail) return load_or_throw(i);
  try {
    return load_or_throw(i);
  } catch (const SampleError& err) {
    report_.skip({entries_.at(i).id, "", err.what(), err.kind()});
    return std::nullopt;
  } catch (const UserError& err) {
    report_.skip({entries_.at(i).id, "", err.what(), IssueKind::Other});
    return std::nullopt;
  }
}

}  // namespace gb::datasets
