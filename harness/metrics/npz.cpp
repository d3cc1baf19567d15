#include "harness/metrics/npz.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "harness/core/errors.h"
#include "harness/io/read_file.h"
#include "harness/core/excerpt.h"

namespace gb::metrics {
namespace {

uint16_t le16(const std::string& b, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(b[at]) | (static_cast<uint8_t>(b[at + 1]) << 8));
}
uint32_t le32(const std::string& b, size_t at) {
  return static_cast<uint32_t>(le16(b, at)) | (static_cast<uint32_t>(le16(b, at + 2)) << 16);
}
uint64_t le64(const std::string& b, size_t at) {
  return static_cast<uint64_t>(le32(b, at)) | (static_cast<uint64_t>(le32(b, at + 4)) << 32);
}
void put16(std::string& b, uint16_t v) {
  b.push_back(static_cast<char>(v & 0xff));
  b.push_back(static_cast<char>(v >> 8));
}
void put32(std::string& b, uint32_t v) {
  put16(b, static_cast<uint16_t>(v & 0xffff));
  put16(b, static_cast<uint16_t>(v >> 16));
}

struct Descr {
  at::ScalarType type;
  size_t size;
  bool big_endian;
};

Descr parse_descr(const std::string& d, const std::string& source) {
  if (d.size() < 3) fail_file(source, "unsupported .npy dtype {}", excerpt(d));
  const char order = d[0];
  const std::string code = d.substr(1);
  bool big = order == '>';
  if (order != '<' && order != '>' && order != '|' && order != '=')
    fail_file(source, "unsupported .npy dtype {}", excerpt(d));
  static const std::map<std::string, std::pair<at::ScalarType, size_t>> kinds = {
      {"f2", {at::kHalf, 2}}, {"f4", {at::kFloat, 4}}, {"f8", {at::kDouble, 8}},
      {"i1", {at::kChar, 1}}, {"i2", {at::kShort, 2}}, {"i4", {at::kInt, 4}},
      {"i8", {at::kLong, 8}}, {"u1", {at::kByte, 1}},  {"b1", {at::kBool, 1}}};
  auto it = kinds.find(code);
  if (it == kinds.end())
    fail_file(source, "unsupported .npy dtype {} (float16/32/64, int8-64, uint8, bool)", excerpt(d));
  return {it->second.first, it->second.second, big && it->second.second > 1};
}

// The value of 'key' in numpy's header dict literal, as text.
std::string header_value(const std::string& h, const std::string& key, const std::string& source) {
  const std::string k1 = "'" + key + "'";
  size_t p = h.find(k1);
  if (p == std::string::npos) fail_file(source, ".npy header has no '{}': {}", key, excerpt(h, 80));
  p = h.find(':', p + k1.size());
  if (p == std::string::npos) fail_file(source, "malformed .npy header: {}", excerpt(h, 80));
  ++p;
  while (p < h.size() && h[p] == ' ') ++p;
  if (p >= h.size()) fail_file(source, "malformed .npy header: {}", excerpt(h, 80));
  if (h[p] == '\'') {
    size_t e = h.find('\'', p + 1);
    if (e == std::string::npos) fail_file(source, "malformed .npy header: {}", excerpt(h, 80));
    return h.substr(p + 1, e - p - 1);
  }
  if (h[p] == '(') {
    size_t e = h.find(')', p);
    if (e == std::string::npos) fail_file(source, "malformed .npy header: {}", excerpt(h, 80));
    return h.substr(p, e - p + 1);
  }
  size_t e = h.find_first_of(",}", p);
  return h.substr(p, e == std::string::npos ? std::string::npos : e - p);
}

std::vector<int64_t> parse_shape(const std::string& s, const std::string& source) {
  std::vector<int64_t> shape;
  if (s.size() < 2 || s.front() != '(' || s.back() != ')') fail_file(source, "malformed .npy shape {}", excerpt(s));
  std::string inner = s.substr(1, s.size() - 2);
  std::stringstream ss(inner);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t b = item.find_first_not_of(" L"), e = item.find_last_not_of(" L");
    if (b == std::string::npos) continue;
    item = item.substr(b, e - b + 1);
    try {
      size_t used = 0;
      long long v = std::stoll(item, &used);
      if (used != item.size() || v < 0) throw std::invalid_argument(item);
      shape.push_back(v);
    } catch (const std::exception&) {
      fail_file(source, "malformed .npy shape {}", excerpt(s));
    }
  }
  return shape;
}

std::string inflate_raw(const std::string& src, size_t out_size, const std::string& source) {
  std::string out(out_size, '\0');
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) fail_file(source, "cannot initialise zlib");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(src.data()));
  zs.avail_in = static_cast<uInt>(src.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = inflate(&zs, Z_FINISH);
  const size_t produced = zs.total_out;
  inflateEnd(&zs);
  if (rc != Z_STREAM_END || produced != out_size) fail_file(source, "corrupt deflated data");
  return out;
}

}  // namespace

at::Tensor parse_npy(const std::string& b, const std::string& source) {
  if (b.size() < 10 || b.compare(0, 6, "\x93NUMPY") != 0) fail_file(source, "not a .npy array (bad magic)");
  const int major = static_cast<uint8_t>(b[6]);
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = le16(b, 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12) fail_file(source, "truncated .npy header");
    header_len = le32(b, 8);
    header_start = 12;
  } else {
    fail_file(source, "unsupported .npy format version {}", major);
  }
  if (header_start + header_len > b.size()) fail_file(source, "truncated .npy header");
  const std::string h = b.substr(header_start, header_len);
  const Descr descr = parse_descr(header_value(h, "descr", source), source);
  const std::string fortran = header_value(h, "fortran_order", source);
  if (fortran != "False" && fortran != "True") fail_file(source, "malformed .npy header: {}", excerpt(h, 80));
  const std::vector<int64_t> shape = parse_shape(header_value(h, "shape", source), source);
  // The element count, bounded by what the bytes after the header can hold (no overflow on absurd shapes).
  const size_t data_start = header_start + header_len;
  const size_t max_elements = (b.size() - data_start) / descr.size;
  size_t numel = 1;
  for (int64_t d : shape) {
    if (d != 0 && numel > max_elements / static_cast<size_t>(d))
      fail_file(source, ".npy shape {} needs more than the {} data bytes the file holds",
                excerpt(header_value(h, "shape", source)), b.size() - data_start);
    numel *= static_cast<size_t>(d);
  }
  const size_t nbytes = numel * descr.size;
  if (b.size() - data_start < nbytes)
    fail_file(source, ".npy data is {} bytes, its header says {}", b.size() - data_start, nbytes);
  std::vector<int64_t> stored(shape);
  const bool f_order = fortran == "True";
  if (f_order) std::reverse(stored.begin(), stored.end());
  at::Tensor t = at::empty(stored, at::TensorOptions().dtype(descr.type));
  auto* dst = static_cast<uint8_t*>(t.data_ptr());
  if (nbytes) std::memcpy(dst, b.data() + data_start, nbytes);  // an empty array has no data pointer
  if (descr.big_endian)
    for (size_t i = 0; i < nbytes; i += descr.size) std::reverse(dst + i, dst + i + descr.size);
  if (f_order && stored.size() > 1) {
    std::vector<int64_t> perm(stored.size());
    for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int64_t>(perm.size() - 1 - i);
    t = t.permute(perm).contiguous();
  }
  return t;
}

std::string serialize_npy(const at::Tensor& array) {
  at::Tensor t = array.detach().to(at::kCPU).contiguous();
  std::string descr;
  switch (t.scalar_type()) {
    case at::kHalf: descr = "<f2"; break;
    case at::kFloat: descr = "<f4"; break;
    case at::kDouble: descr = "<f8"; break;
    case at::kChar: descr = "|i1"; break;
    case at::kShort: descr = "<i2"; break;
    case at::kInt: descr = "<i4"; break;
    case at::kLong: descr = "<i8"; break;
    case at::kByte: descr = "|u1"; break;
    case at::kBool: descr = "|b1"; break;
    default: fail("cannot write a {} tensor to .npy", c10::toString(t.scalar_type()));
  }
  std::string shape = "(";
  for (int64_t i = 0; i < t.dim(); ++i)
    shape += std::to_string(t.size(i)) + (t.dim() == 1 ? ",)" : (i + 1 < t.dim() ? ", " : ")"));
  if (t.dim() == 0) shape = "()";
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // numpy pads with spaces so the data starts at a multiple of 64, and ends the header with '\n'.
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  put16(out, static_cast<uint16_t>(header.size()));
  out += header;
  out.append(static_cast<const char*>(t.data_ptr()), t.nbytes());
  return out;
}

std::map<std::string, at::Tensor> read_npz(const std::string& path) {
  const std::string b = read_whole_file(path, ".npz file");
  if (b.size() < 22) fail_file(path, "not an .npz archive (too short)");
  // End of central directory: the last "PK\5\6" within the trailing 64 KiB comment window.
  size_t eocd = std::string::npos;
  for (size_t i = b.size() - 22 + 1; i-- > 0 && b.size() - i <= 22 + 65535;) {
    if (le32(b, i) == 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd == std::string::npos) fail_file(path, "not an .npz archive (no zip directory)");
  uint64_t entries = le16(b, eocd + 10);
  uint64_t cd_offset = le32(b, eocd + 16);
  if ((entries == 0xffff || cd_offset == 0xffffffffu) && eocd >= 20 && le32(b, eocd - 20) == 0x07064b50) {
    const uint64_t z64 = le64(b, eocd - 20 + 8);
    if (b.size() < 56 || z64 > b.size() - 56 || le32(b, z64) != 0x06064b50) fail_file(path, "corrupt zip64 directory");
    entries = le64(b, z64 + 32);
    cd_offset = le64(b, z64 + 48);
  }
  std::map<std::string, at::Tensor> out;
  size_t p = cd_offset;
  for (uint64_t e = 0; e < entries; ++e) {
    if (p > b.size() || b.size() - p < 46 || le32(b, p) != 0x02014b50) fail_file(path, "corrupt zip directory");
    const uint16_t method = le16(b, p + 10);
    const uint32_t crc = le32(b, p + 16);
    uint64_t csize = le32(b, p + 20), usize = le32(b, p + 24);
    const uint16_t nlen = le16(b, p + 28), xlen = le16(b, p + 30), clen = le16(b, p + 32);
    uint64_t local = le32(b, p + 42);
    if (b.size() - p - 46 < size_t(nlen) + xlen + clen) fail_file(path, "corrupt zip directory");
    const std::string name = excerpt(b.substr(p + 46, nlen), 60);  // as messages quote it
    const std::string raw_name = b.substr(p + 46, nlen);
    // zip64 extra field: the 64-bit values of those fields that read 0xffffffff, in this order.
    for (size_t x = p + 46 + nlen; x + 4 <= p + 46 + nlen + xlen;) {
      const uint16_t id = le16(b, x), sz = le16(b, x + 2);
      if (id == 0x0001) {
        size_t q = x + 4;
        const size_t end = std::min<size_t>(x + 4 + sz, p + 46 + nlen + xlen);
        auto next64 = [&](uint64_t& v) {
          if (v != 0xffffffffu) return;
          if (q + 8 > end) fail_file(path, "corrupt zip64 extra field of entry {}", name);
          v = le64(b, q);
          q += 8;
        };
        next64(usize);
        next64(csize);
        next64(local);
      }
      x += 4 + sz;
    }
    p += 46 + nlen + xlen + clen;
    if (b.size() < 30 || local > b.size() - 30 || le32(b, local) != 0x04034b50)
      fail_file(path, "corrupt zip entry {}", name);
    const size_t data = local + 30 + le16(b, local + 26) + le16(b, local + 28);
    if (data > b.size() || csize > b.size() - data) fail_file(path, "truncated zip entry {}", name);
    std::string raw = b.substr(data, csize);
    if (method == 8) {
      // deflate expands at most 1032:1; a larger claimed size is a corrupt header, not an allocation to make.
      if (usize > csize * 1032 + 64)
        fail_file(path, "zip entry {} claims {} bytes inflated from {}", name, usize, csize);
      raw = inflate_raw(raw, usize, path + ":" + raw_name);
    } else if (method != 0) {
      fail_file(path, "zip entry {} uses compression method {} (only stored and deflate are supported)", name, method);
    }
    if (raw.size() != usize) fail_file(path, "zip entry {} has the wrong size", name);
    if (crc32(0L, reinterpret_cast<const Bytef*>(raw.data()), static_cast<uInt>(raw.size())) != crc)
      fail_file(path, "zip entry {} fails its CRC check", name);
    std::string key = raw_name;
    if (key.size() > 4 && key.compare(key.size() - 4, 4, ".npy") == 0) key.resize(key.size() - 4);
    out[key] = parse_npy(raw, path + ":" + raw_name);
  }
  return out;
}

void write_npz(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& arrays) {
  std::string zip, central;
  for (const auto& [name, t] : arrays) {
    const std::string data = serialize_npy(t);
    if (data.size() >= 0xffffffffu) fail_file(path, "array '{}' is too large for a plain zip entry", name);
    const std::string fname = name + ".npy";
    const uint32_t crc = crc32(0L, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size()));
    const uint32_t offset = static_cast<uint32_t>(zip.size());
    // Local header: version 20, no flags, stored, DOS time 1980-01-01 00:00.
    put32(zip, 0x04034b50);
    put16(zip, 20);
    put16(zip, 0);
    put16(zip, 0);
    put16(zip, 0);
    put16(zip, 0x21);
    put32(zip, crc);
    put32(zip, static_cast<uint32_t>(data.size()));
    put32(zip, static_cast<uint32_t>(data.size()));
    put16(zip, static_cast<uint16_t>(fname.size()));
    put16(zip, 0);
    zip += fname;
    zip += data;
    put32(central, 0x02014b50);
    put16(central, 20);
    put16(central, 20);
    put16(central, 0);
    put16(central, 0);
    put16(central, 0);
    put16(central, 0x21);
    put32(central, crc);
    put32(central, static_cast<uint32_t>(data.size()));
    put32(central, static_cast<uint32_t>(data.size()));
    put16(central, static_cast<uint16_t>(fname.size()));
    put16(central, 0);
    put16(central, 0);
    put16(central, 0);
    put16(central, 0);
    put32(central, 0);
    put32(central, offset);
    central += fname;
  }
  const uint32_t cd_offset = static_cast<uint32_t>(zip.size());
  zip += central;
  put32(zip, 0x06054b50);
  put16(zip, 0);
  put16(zip, 0);
  put16(zip, static_cast<uint16_t>(arrays.size()));
  put16(zip, static_cast<uint16_t>(arrays.size()));
  put32(zip, static_cast<uint32_t>(central.size()));
  put32(zip, cd_offset);
  put16(zip, 0);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail_file(path, "cannot create .npz file");
  out.write(zip.data(), static_cast<std::streamsize>(zip.size()));
  if (!out) fail_file(path, "cannot write .npz file");
}

}  // namespace gb::metrics
