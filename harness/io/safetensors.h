#pragma once
// safetensors (https://github.com/huggingface/safetensors format): an 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the
// byte buffer. Reading is lazy through mmap; every malformed file is a UserError naming it.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace gb {

enum class StDType { F16, BF16, F32, F64, I64, I32, I16, I8, U8, BOOL };

std::string to_string(StDType d);  // "F16", ...
size_t element_size(StDType d);
at::ScalarType scalar_type(StDType d);
StDType st_dtype_of(const at::Tensor& t);  // throws UserError for unsupported scalar types

struct StTensorInfo {
  std::string name;
  StDType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // offsets into the data buffer
  uint64_t end = 0;
};

// One .safetensors file, memory-mapped.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);  // validates the header, throws UserError
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  std::vector<std::string> keys() const;  // sorted
  bool contains(const std::string& name) const { return infos_.count(name) != 0; }
  const StTensorInfo& info(const std::string& name) const;  // UserError if absent
  // A CPU tensor that owns a copy of the data.
  at::Tensor load(const std::string& name) const;

 private:
  std::string path_;
  std::map<std::string, StTensorInfo> infos_;
  std::map<std::string, std::string> metadata_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  size_t data_offset_ = 0;
};

// A checkpoint: a single .safetensors file, a sharded set through `*.safetensors.index.json`
// ({"metadata": {...}, "weight_map": {name: shard file}}), or a folder holding either
// (prefers `<stem>.safetensors`, then `<stem>.safetensors.index.json`, for the given variant such as "fp16").
class SafetensorsCheckpoint {
 public:
  static SafetensorsCheckpoint open(const std::string& path);
  // Folder lookup: diffusion_pytorch_model[.variant].safetensors or its index, or model[.variant]...
  static SafetensorsCheckpoint open_dir(const std::string& dir, const std::string& variant = "");

  std::vector<std::string> keys() const;  // sorted
  bool contains(const std::string& name) const;
  const StTensorInfo& info(const std::string& name) const;
  at::Tensor load(const std::string& name) const;
  std::string file_of(const std::string& name) const;
  const std::vector<std::string>& files() const { return files_; }

 private:
  std::vector<std::string> files_;
  std::vector<std::shared_ptr<SafetensorsFile>> shards_;
  std::map<std::string, size_t> shard_of_;
};

// Writes tensors (any device, contiguous or not) in the given order; metadata goes to "__metadata__".
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
void save_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
// Every tensor of a file, loaded.
// Brace-list form: save_safetensors(path, {{"a", a}, {"b", b}}) (in this order).
void save_safetensors(const std::string& path, std::initializer_list<std::pair<std::string, at::Tensor>> tensors,
                      const std::map<std::string, std::string>& metadata = {});
std::map<std::string, at::Tensor> load_safetensors(const std::string& path);

}  // namespace gb
