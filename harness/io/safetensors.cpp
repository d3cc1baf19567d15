#include "harness/io/safetensors.h"

#include "harness/io/atomic_file.h"
#include "harness/io/json_io.h"
#include "harness/io/read_file.h"

#include "harness/core/errors.h"
#include "harness/core/strings.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace gb {

namespace fs = std::filesystem;

namespace {

// The reference implementation refuses headers above 100 MB; so do we (a corrupt length must not make us
// allocate or parse gigabytes).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DTypeRow {
  StDType dtype;
  const char* name;
  size_t size;
  at::ScalarType scalar;
};

constexpr DTypeRow kDTypes[] = {
    {StDType::F16, "F16", 2, at::kHalf},  {StDType::BF16, "BF16", 2, at::kBFloat16},
    {StDType::F32, "F32", 4, at::kFloat}, {StDType::F64, "F64", 8, at::kDouble},
    {StDType::I64, "I64", 8, at::kLong},  {StDType::I32, "I32", 4, at::kInt},
    {StDType::I16, "I16", 2, at::kShort}, {StDType::I8, "I8", 1, at::kChar},
    {StDType::U8, "U8", 1, at::kByte},    {StDType::BOOL, "BOOL", 1, at::kBool},
};

const DTypeRow& row(StDType d) {
  for (const auto& r : kDTypes)
    if (r.dtype == d) return r;
  throw std::logic_error("safetensors: invalid StDType");
}

bool parse_dtype(const std::string& s, StDType* out) {
  for (const auto& r : kDTypes) {
    if (s == r.name) {
      *out = r.dtype;
      return true;
    }
  }
  return false;
}

bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }

std::string errno_text() { return std::strerror(errno); }

}  // namespace

std::string to_string(StDType d) { return row(d).name; }
size_t element_size(StDType d) { return row(d).size; }
at::ScalarType scalar_type(StDType d) { return row(d).scalar; }

StDType st_dtype_of(const at::Tensor& t) {
  for (const auto& r : kDTypes)
    if (r.scalar == t.scalar_type()) return r.dtype;
  fail("safetensors: unsupported tensor dtype {}", std::string(c10::toString(t.scalar_type())));
}

namespace {

// One tensor entry of the header: dtype, shape and byte range checked against each other and the data size.
StTensorInfo parse_tensor_entry(const std::string& path, const std::string& name, const nlohmann::json& v,
                                uint64_t data_size) {
  if (!v.is_object()) fail_file(path, "tensor '{}': entry is not an object", name);
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!v.contains(field)) fail_file(path, "tensor '{}': missing '{}'", name, field);
  }
  StTensorInfo info;
  info.name = name;
  const auto& dt = v["dtype"];
  if (!dt.is_string()) fail_file(path, "tensor '{}': dtype is not a string", name);
  if (!parse_dtype(dt.get<std::string>(), &info.dtype)) {
    fail_file(path,
              "tensor '{}': unknown or unsupported dtype '{}' (supported: F16 BF16 F32 F64 I64 I32 I16 I8 U8 BOOL)",
              name, dt.get<std::string>());
  }
  const auto& shape = v["shape"];
  if (!shape.is_array()) fail_file(path, "tensor '{}': shape is not a list", name);
  uint64_t numel = 1;
  for (const auto& d : shape) {
    if (!d.is_number_unsigned())
      fail_file(path, "tensor '{}': shape {} has a non-integer or negative entry", name, shape.dump());
    uint64_t dim = d.get<uint64_t>();
    if (dim > static_cast<uint64_t>(INT64_MAX) || !checked_mul(numel, dim, &numel)) {
      fail_file(path, "tensor '{}': shape {} overflows", name, shape.dump());
    }
    info.shape.push_back(static_cast<int64_t>(dim));
  }
  const auto& off = v["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
    fail_file(path, "tensor '{}': data_offsets must be two non-negative integers, found {}", name, off.dump());
  }
  info.begin = off[0].get<uint64_t>();
  info.end = off[1].get<uint64_t>();
  if (info.end < info.begin) {
    fail_file(path, "tensor '{}': data_offsets [{}, {}] end before they begin", name, info.begin, info.end);
  }
  if (info.end > data_size) {
    fail_file(path, "tensor '{}': data_offsets [{}, {}] run past the end of the data ({} bytes; file truncated?)", name,
              info.begin, info.end, data_size);
  }
  uint64_t nbytes = 0;
  if (!checked_mul(numel, element_size(info.dtype), &nbytes) || nbytes != info.end - info.begin) {
    fail_file(path, "tensor '{}': {} bytes for shape {} of {} (expected {} x {} bytes)", name, info.end - info.begin,
              shape.dump(), to_string(info.dtype), numel, element_size(info.dtype));
  }
  return info;
}

// The byte ranges must tile the data buffer exactly: sorted by offset, each starts where the previous one ended,
// and the last one ends at the end of the file (as the reference implementation requires).
void check_tiling(const std::string& path, std::vector<const StTensorInfo*> by_offset, uint64_t data_size) {
  std::sort(by_offset.begin(), by_offset.end(), [](const StTensorInfo* a, const StTensorInfo* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t cursor = 0;
  const StTensorInfo* prev = nullptr;
  for (const StTensorInfo* t : by_offset) {
    if (t->begin < cursor) {
      fail_file(path, "tensors '{}' and '{}' overlap (bytes [{}, {}) and [{}, {}))", prev->name, t->name, prev->begin,
                prev->end, t->begin, t->end);
    }
    if (t->begin > cursor) {
      fail_file(path, "tensor '{}': data starts at byte {} but the previous tensor ends at {} (gap in the data)",
                t->name, t->begin, cursor);
    }
    cursor = t->end;
    prev = t;
  }
  if (cursor != data_size) {
    fail_file(path, "the tensors cover {} bytes of data but the file holds {} (trailing bytes or bad offsets)", cursor,
              data_size);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// SafetensorsFile

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_file(path, "cannot open: {}", errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    std::string why = errno_text();
    ::close(fd);
    fail_file(path, "cannot stat: {}", why);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail_file(path, "not a regular file");
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    fail_file(path, "not a safetensors file: {} bytes, too short for the 8-byte header length", file_size);
  }
  void* map = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  std::string map_error = map == MAP_FAILED ? errno_text() : "";
  ::close(fd);
  if (map == MAP_FAILED) fail_file(path, "cannot mmap: {}", map_error);
  map_ = map;
  map_size_ = file_size;
  try {
    const auto* bytes = static_cast<const uint8_t*>(map_);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];  // little-endian
    if (n > kMaxHeaderBytes) fail_file(path, "not a safetensors file: header length {} is implausible", n);
    if (n > file_size - 8) {
      fail_file(path, "truncated safetensors file: header length {} runs past the end of the file ({} bytes)", n,
                file_size);
    }
    if (n < 2) fail_file(path, "not a safetensors file: header of {} bytes", n);
    data_offset_ = 8 + n;
    const char* hb = reinterpret_cast<const char*>(bytes + 8);
    if (hb[0] != '{') fail_file(path, "not a safetensors file: the header does not start with '{{'");
    check_json_depth(std::string_view(hb, n), path);
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(hb, hb + n);
    } catch (const nlohmann::json::exception& e) {
      fail_file(path, "invalid safetensors header JSON: {}", json_error_text(e));
    }
    if (!header.is_object()) fail_file(path, "invalid safetensors header: not a JSON object");

    const uint64_t data_size = file_size - data_offset_;
    std::vector<const StTensorInfo*> by_offset;
    for (auto it = header.begin(); it != header.end(); ++it) {
      const std::string& name = it.key();
      const auto& v = it.value();
      if (name == "__metadata__") {
        if (!v.is_object()) fail_file(path, "__metadata__ must map strings to strings");
        for (auto m = v.begin(); m != v.end(); ++m) {
          if (!m.value().is_string()) fail_file(path, "__metadata__['{}'] is not a string", m.key());
          metadata_[m.key()] = m.value().get<std::string>();
        }
        continue;
      }
      StTensorInfo info = parse_tensor_entry(path, name, v, data_size);
      auto [pos, inserted] = infos_.emplace(name, std::move(info));
      if (!inserted) fail_file(path, "tensor '{}' appears twice", name);
      by_offset.push_back(&pos->second);
    }
    check_tiling(path, by_offset, data_size);
  } catch (...) {
    ::munmap(map_, map_size_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(map_, map_size_);
}

std::vector<std::string> SafetensorsFile::keys() const {
  std::vector<std::string> out;
  out.reserve(infos_.size());
  for (const auto& kv : infos_) out.push_back(kv.first);
  return out;
}

const StTensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = infos_.find(name);
  if (it == infos_.end()) fail_file(path_, "no tensor named '{}'", name);
  return it->second;
}

at::Tensor SafetensorsFile::load(const std::string& name) const {
  const StTensorInfo& i = info(name);
  const auto& r = row(i.dtype);
  at::Tensor t = at::empty(i.shape, at::TensorOptions().dtype(r.scalar));
  const uint8_t* src = static_cast<const uint8_t*>(map_) + data_offset_ + i.begin;
  const size_t n = i.end - i.begin;
  if (i.dtype == StDType::BOOL) {
    for (size_t k = 0; k < n; ++k) {
      if (src[k] > 1) fail_file(path_, "tensor '{}': BOOL byte {} has value {} (must be 0 or 1)", name, k, src[k]);
    }
  }
  if (n != 0) std::memcpy(t.data_ptr(), src, n);
  return t;
}

// ---------------------------------------------------------------------------------------------------------
// SafetensorsCheckpoint

SafetensorsCheckpoint SafetensorsCheckpoint::open(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return open_dir(path);
  if (!fs::exists(path, ec)) fail_file(path, "no such file");
  SafetensorsCheckpoint ck;
  if (ends_with(path, ".json")) {
    const std::string text = read_whole_file(path, "index file");
    check_json_depth(text, path);
    nlohmann::json index;
    try {
      index = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      fail_file(path, "invalid safetensors index JSON: {}", json_error_text(e));
    }
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
      fail_file(path, "not a safetensors index: expected an object with a 'weight_map' object");
    }
    const fs::path dir = fs::path(path).parent_path();
    std::map<std::string, size_t> shard_index;
    const auto& wm = index["weight_map"];
    for (auto it = wm.begin(); it != wm.end(); ++it) {
      if (!it.value().is_string()) fail_file(path, "weight_map['{}'] is not a file name", it.key());
      const std::string shard = it.value().get<std::string>();
      auto found = shard_index.find(shard);
      size_t idx;
      if (found == shard_index.end()) {
        const std::string shard_path = (dir / shard).string();
        if (!fs::is_regular_file(shard_path, ec)) {
          fail_file(path, "shard '{}' (for tensor '{}') does not exist at {}", shard, it.key(), shard_path);
        }
        idx = ck.shards_.size();
        shard_index.emplace(shard, idx);
        ck.shards_.push_back(std::make_shared<SafetensorsFile>(shard_path));
        ck.files_.push_back(shard_path);
      } else {
        idx = found->second;
      }
      if (!ck.shards_[idx]->contains(it.key())) {
        fail_file(path, "weight_map says tensor '{}' is in '{}' but that shard does not hold it", it.key(), shard);
      }
      ck.shard_of_[it.key()] = idx;
    }
    return ck;
  }
  ck.shards_.push_back(std::make_shared<SafetensorsFile>(path));
  ck.files_.push_back(path);
  for (const auto& k : ck.shards_[0]->keys()) ck.shard_of_[k] = 0;
  return ck;
}

SafetensorsCheckpoint SafetensorsCheckpoint::open_dir(const std::string& dir, const std::string& variant) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail_file(dir, "not a directory");
  std::vector<std::string> tried;
  for (const std::string stem : {"diffusion_pytorch_model", "model"}) {
    std::vector<std::string> names;
    if (variant.empty()) {
      names = {stem + ".safetensors", stem + ".safetensors.index.json"};
    } else {
      // diffusers spells variant indices "<stem>.safetensors.index.<variant>.json"; accept the other order too.
      names = {stem + "." + variant + ".safetensors", stem + ".safetensors.index." + variant + ".json",
               stem + "." + variant + ".safetensors.index.json"};
    }
    for (const auto& n : names) {
      const fs::path p = fs::path(dir) / n;
      if (fs::is_regular_file(p, ec)) return open(p.string());
      tried.push_back(n);
    }
  }
  std::string list;
  for (const auto& t : tried) list += (list.empty() ? "" : ", ") + t;
  fail_file(dir, "no safetensors checkpoint{} here (looked for {})",
            variant.empty() ? std::string() : " for variant '" + variant + "'", list);
}

std::vector<std::string> SafetensorsCheckpoint::keys() const {
  std::vector<std::string> out;
  out.reserve(shard_of_.size());
  for (const auto& kv : shard_of_) out.push_back(kv.first);
  return out;
}

bool SafetensorsCheckpoint::contains(const std::string& name) const { return shard_of_.count(name) != 0; }

namespace {
[[noreturn]] void missing_tensor(const std::vector<std::string>& files, const std::string& name) {
  fail_file(files.size() == 1 ? files[0]
            : files.empty()   ? std::string("<empty checkpoint>")
                              : files[0] + " (+" + std::to_string(files.size() - 1) + " shards)",
            "no tensor named '{}'", name);
}
}  // namespace

const StTensorInfo& SafetensorsCheckpoint::info(const std::string& name) const {
  auto it = shard_of_.find(name);
  if (it == shard_of_.end()) missing_tensor(files_, name);
  return shards_[it->second]->info(name);
}

at::Tensor SafetensorsCheckpoint::load(const std::string& name) const {
  auto it = shard_of_.find(name);
  if (it == shard_of_.end()) missing_tensor(files_, name);
  return shards_[it->second]->load(name);
}

std::string SafetensorsCheckpoint::file_of(const std::string& name) const {
  auto it = shard_of_.find(name);
  if (it == shard_of_.end()) missing_tensor(files_, name);
  return files_[it->second];
}

// ---------------------------------------------------------------------------------------------------------
// Writer

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<at::Tensor> cpu;
  cpu.reserve(tensors.size());
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& kv : metadata) m[kv.first] = kv.second;
    header["__metadata__"] = m;
  }
  uint64_t offset = 0;
  std::set<std::string> seen;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__") fail_file(path, "'__metadata__' cannot be a tensor name");
    if (!seen.insert(name).second) fail_file(path, "tensor name '{}' given twice", name);
    if (!t.defined()) fail_file(path, "tensor '{}' is undefined", name);
    StDType d;
    try {
      d = st_dtype_of(t);
    } catch (const UserError& e) {
      fail_file(path, "tensor '{}': {}", name, e.what());
    }
    at::Tensor c = t.device().is_cpu() ? t.contiguous() : t.to(at::kCPU).contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(c.numel()) * element_size(d);
    header[name] = {{"dtype", to_string(d)}, {"shape", c.sizes().vec()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    cpu.push_back(std::move(c));
  }
  std::string h = header.dump();
  // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
  h.append((8 - h.size() % 8) % 8, ' ');
  AtomicFile f(path);
  uint8_t len[8];
  const uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
  f.write(len, 8);
  f.write(h);
  for (const auto& c : cpu) {
    const size_t bytes = static_cast<size_t>(c.numel()) * c.element_size();
    if (bytes != 0) f.write(c.data_ptr(), bytes);
  }
  f.commit();
}

void save_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  save_safetensors(path, std::vector<std::pair<std::string, at::Tensor>>(tensors.begin(), tensors.end()), metadata);
}

void save_safetensors(const std::string& path, std::initializer_list<std::pair<std::string, at::Tensor>> tensors,
                      const std::map<std::string, std::string>& metadata) {
  save_safetensors(path, std::vector<std::pair<std::string, at::Tensor>>(tensors), metadata);
}

std::map<std::string, at::Tensor> load_safetensors(const std::string& path) {
  SafetensorsFile f(path);
  std::map<std::string, at::Tensor> out;
  for (const auto& k : f.keys()) out.emplace(k, f.load(k));
  return out;
}

}  // namespace gb
