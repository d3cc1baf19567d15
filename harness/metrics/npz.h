#pragma once
// NumPy .npy / .npz files (the format numpy.save / numpy.savez / numpy.savez_compressed write), enough for
// pytorch-fid's statistics files (`mu`, `sigma`): a zip archive (stored or deflated entries, zip64 records as
// numpy writes them) of .npy arrays (format 1.0-3.0, little- or big-endian float16/32/64, int8-64, uint8, bool,
// C or Fortran order). Arrays come back as contiguous CPU tensors of the matching dtype. Every malformed file
// is a gb::UserError naming it.
#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace gb::metrics {

// name (without ".npy") -> array, for every entry of the archive.
std::map<std::string, at::Tensor> read_npz(const std::string& path);

// Writes an uncompressed archive with one <name>.npy per array (format 1.0, C order, little-endian), in order.
void write_npz(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& arrays);

// One .npy from its bytes; `source` names it in errors.
at::Tensor parse_npy(const std::string& bytes, const std::string& source);
std::string serialize_npy(const at::Tensor& array);

}  // namespace gb::metrics
