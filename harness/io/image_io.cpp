#include "harness/io/image_io.h"

#include "harness/io/atomic_file.h"

#include "harness/core/errors.h"

#include <spng.h>
#include <turbojpeg.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

namespace gb {

namespace {

// Decoded images above this many bytes are refused (a corrupt header must not allocate gigabytes).
constexpr uint64_t kMaxDecodedBytes = uint64_t(1) << 31;

std::vector<uint8_t> read_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail_file(path, "cannot open: {}", std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail_file(path, "not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_file(path, "cannot open: {}", std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) fail_file(path, "cannot read (not a regular file?)");
  in.seekg(0, std::ios::beg);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size)) fail_file(path, "read error");
  return bytes;
}

enum class Format { Png, Jpeg };

Format sniff(const std::vector<uint8_t>& b, const std::string& name) {
  static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (b.size() >= 8 && std::memcmp(b.data(), png_sig, 8) == 0) return Format::Png;
  if (b.size() >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return Format::Jpeg;
  if (b.empty()) fail_file(name, "empty file, not an image");
  fail_file(name, "not a PNG or JPEG file (unrecognised signature)");
}

// ---------------------------------------------------------------------------------------------------------
// PNG (libspng)

struct SpngCtx {
  spng_ctx* ctx;
  explicit SpngCtx(int flags) : ctx(spng_ctx_new(flags)) {
    if (ctx == nullptr) throw std::bad_alloc();
  }
  ~SpngCtx() { spng_ctx_free(ctx); }
  SpngCtx(const SpngCtx&) = delete;
  SpngCtx& operator=(const SpngCtx&) = delete;
};

void check_png(int rc, const std::string& name, const char* what) {
  if (rc == 0) return;
  const char* why = spng_strerror(rc);
  if (rc == SPNG_EOF || rc == SPNG_IO_EOF || rc == SPNG_EIDAT_TOO_SHORT) {
    fail_file(name, "truncated or corrupt PNG ({}: {})", what, why);
  }
  fail_file(name, "corrupt PNG ({}: {})", what, why);
}

struct PngDecoder {
  SpngCtx c{0};
  spng_ihdr ihdr{};
  std::string name;

  PngDecoder(const std::vector<uint8_t>& bytes, const std::string& source) : name(source) {
    check_png(spng_set_crc_action(c.ctx, SPNG_CRC_ERROR, SPNG_CRC_DISCARD), name, "setup");
    check_png(spng_set_png_buffer(c.ctx, bytes.data(), bytes.size()), name, "setup");
    // Bound memory spent on ancillary chunks (text, ICC profiles) of hostile files.
    check_png(spng_set_chunk_limits(c.ctx, 64u << 20, 64u << 20), name, "setup");
    check_png(spng_get_ihdr(c.ctx, &ihdr), name, "header");
  }
  int channels() const {
    switch (ihdr.color_type) {
      case SPNG_COLOR_TYPE_GRAYSCALE: return 1;
      case SPNG_COLOR_TYPE_TRUECOLOR: return 3;
      case SPNG_COLOR_TYPE_INDEXED: return 1;
      case SPNG_COLOR_TYPE_GRAYSCALE_ALPHA: return 2;
      default: return 4;
    }
  }
  size_t decoded_size(int fmt) {
    size_t n = 0;
    check_png(spng_decoded_image_size(c.ctx, fmt, &n), name, "header");
    if (n > kMaxDecodedBytes) fail_file(name, "PNG too large ({}x{})", ihdr.width, ihdr.height);
    return n;
  }
  void decode(void* out, size_t n, int fmt) { check_png(spng_decode_image(c.ctx, out, n, fmt, 0), name, "image data"); }
};

ImageHeader png_header(PngDecoder& d) {
  ImageHeader h;
  h.width = d.ihdr.width;
  h.height = d.ihdr.height;
  h.channels = d.channels();
  h.bit_depth = d.ihdr.bit_depth;
  h.palette = d.ihdr.color_type == SPNG_COLOR_TYPE_INDEXED;
  h.format = "png";
  return h;
}

at::Tensor png_rgb(const std::vector<uint8_t>& bytes, const std::string& name) {
  PngDecoder d(bytes, name);
  const int64_t h = d.ihdr.height, w = d.ihdr.width;
  if (d.ihdr.bit_depth == 16 && d.ihdr.color_type == SPNG_COLOR_TYPE_GRAYSCALE) {
    // 16-bit gray: scaled to 8 bits by the high byte, like 16-bit colour (PIL would clip to 255 here).
    const size_t n = d.decoded_size(SPNG_FMT_PNG);
    at::Tensor g16 = at::empty({h, w}, at::kShort);
    d.decode(g16.data_ptr(), n, SPNG_FMT_PNG);
    at::Tensor g8 = at::bitwise_and(at::__rshift__(g16.to(at::kInt), 8), 0xff).to(at::kByte);
    return g8.unsqueeze(-1).expand({h, w, 3}).contiguous();
  }
  // libspng converts every colour type and depth to RGB8: gray replicated, palette expanded, alpha dropped,
  // 16-bit colour by its high byte (as PIL), sub-byte gray scaled by bit replication (as PIL).
  const size_t n = d.decoded_size(SPNG_FMT_RGB8);
  at::Tensor out = at::empty({h, w, 3}, at::kByte);
  if (static_cast<size_t>(out.numel()) != n) fail_file(name, "PNG size mismatch");
  d.decode(out.data_ptr(), n, SPNG_FMT_RGB8);
  return out;
}

at::Tensor png_label(const std::vector<uint8_t>& bytes, const std::string& name) {
  PngDecoder d(bytes, name);
  const int64_t h = d.ihdr.height, w = d.ihdr.width;
  const int ct = d.ihdr.color_type, bd = d.ihdr.bit_depth;
  if (ct != SPNG_COLOR_TYPE_GRAYSCALE && ct != SPNG_COLOR_TYPE_INDEXED) {
    static const char* kinds[] = {"gray", "?", "RGB", "palette", "gray+alpha", "?", "RGBA"};
    fail_file(name, "a label map must be a palette or gray PNG, this one is {}", kinds[ct <= 6 ? ct : 1]);
  }
  if (ct == SPNG_COLOR_TYPE_INDEXED) {
    // A palette PNG must have its PLTE chunk. Indices beyond the palette are returned as stored (as PIL does).
    spng_plte plte{};
    check_png(spng_get_plte(d.c.ctx, &plte), name, "palette");
  }
  // SPNG_FMT_PNG: samples as stored (host-endian for 16-bit, packed rows for depths below 8).
  const size_t n = d.decoded_size(SPNG_FMT_PNG);
  std::vector<uint8_t> raw(n);
  d.decode(raw.data(), n, SPNG_FMT_PNG);
  at::Tensor out = at::empty({h, w}, at::kLong);
  int64_t* o = out.data_ptr<int64_t>();
  if (bd == 16) {
    if (n != static_cast<size_t>(h * w * 2)) fail_file(name, "PNG size mismatch");
    const auto* s = reinterpret_cast<const uint16_t*>(raw.data());
    for (int64_t i = 0; i < h * w; ++i) o[i] = s[i];
  } else {
    const size_t stride = (static_cast<size_t>(w) * bd + 7) / 8;
    if (n != stride * static_cast<size_t>(h)) fail_file(name, "PNG size mismatch");
    const int mask = (1 << bd) - 1;
    for (int64_t y = 0; y < h; ++y) {
      const uint8_t* row = raw.data() + y * stride;
      for (int64_t x = 0; x < w; ++x) {
        const int64_t bit = x * bd;
        o[y * w + x] = (row[bit >> 3] >> (8 - bd - (bit & 7))) & mask;
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// JPEG (TurboJPEG)

struct TjHandle {
  tjhandle h;
  explicit TjHandle(bool compress) : h(compress ? tjInitCompress() : tjInitDecompress()) {
    if (h == nullptr) throw std::runtime_error(std::string("TurboJPEG init failed: ") + tjGetErrorStr2(nullptr));
  }
  ~TjHandle() { tjDestroy(h); }
  TjHandle(const TjHandle&) = delete;
  TjHandle& operator=(const TjHandle&) = delete;
};

struct JpegInfo {
  int width = 0, height = 0, subsamp = 0, colorspace = 0;
};

JpegInfo jpeg_info(TjHandle& tj, const std::vector<uint8_t>& b, const std::string& name) {
  JpegInfo i;
  if (tjDecompressHeader3(tj.h, b.data(), b.size(), &i.width, &i.height, &i.subsamp, &i.colorspace) != 0) {
    fail_file(name, "corrupt JPEG header: {}", tjGetErrorStr2(tj.h));
  }
  if (i.width <= 0 || i.height <= 0) fail_file(name, "corrupt JPEG header: size {}x{}", i.width, i.height);
  if (uint64_t(i.width) * uint64_t(i.height) * 4 > kMaxDecodedBytes) {
    fail_file(name, "JPEG too large ({}x{})", i.width, i.height);
  }
  return i;
}

// Whether the JPEG carries an Adobe APP14 marker (then CMYK is stored inverted, as PIL assumes).
bool has_adobe_marker(const std::vector<uint8_t>& b) {
  size_t p = 2;
  while (p + 4 <= b.size()) {
    if (b[p] != 0xff) return false;
    const uint8_t m = b[p + 1];
    if (m == 0xff) {
      ++p;
      continue;
    }
    if (m == 0xda || m == 0xd9) return false;  // start of scan / end of image
    const size_t len = (size_t(b[p + 2]) << 8) | b[p + 3];
    if (len < 2) return false;
    if (m == 0xee && len >= 7 && p + 4 + 5 <= b.size() && std::memcmp(&b[p + 4], "Adobe", 5) == 0) return true;
    p += 2 + len;
  }
  return false;
}

// tjDecompress2 returns -1 both for fatal errors and, after decoding the whole image, for libjpeg warnings
// (corrupt but decodable data); its error code is unreliable when a warning precedes a fatal error, but its
// message is the first warning's or the fatal error's. PIL ignores warnings except running out of data
// ("image file is truncated"), so: benign warnings (libjpeg's JWRN_* texts) pass, "Premature end of JPEG
// file" is a truncated file, anything else is corrupt.
void check_jpeg_decode(int rc, TjHandle& tj, const std::string& name) {
  if (rc == 0) return;
  const std::string msg = tjGetErrorStr2(tj.h);
  auto starts = [&](const char* p) { return msg.rfind(p, 0) == 0; };
  if (starts("Premature end of JPEG file")) fail_file(name, "truncated JPEG ({})", msg);
  if (starts("Corrupt JPEG data") || starts("Warning: unknown JFIF") || starts("Inconsistent progression sequence") ||
      starts("Invalid SOS parameters for sequential JPEG") || starts("Unknown Adobe color transform code") ||
      starts("Application transferred too many scanlines")) {
    return;
  }
  fail_file(name, "corrupt JPEG: {}", msg);
}

inline uint8_t muldiv255(int a, int b) {
  int t = a * b + 128;
  return static_cast<uint8_t>(((t >> 8) + t) >> 8);
}

at::Tensor jpeg_rgb(const std::vector<uint8_t>& bytes, const std::string& name) {
  TjHandle tj(false);
  const JpegInfo i = jpeg_info(tj, bytes, name);
  // Default flags: accurate integer IDCT and fancy (smooth) upsampling, the libjpeg defaults PIL decodes with.
  const int flags = TJFLAG_LIMITSCANS;
  at::Tensor out = at::empty({i.height, i.width, 3}, at::kByte);
  if (i.colorspace == TJCS_CMYK || i.colorspace == TJCS_YCCK) {
    std::vector<uint8_t> cmyk(size_t(i.width) * i.height * 4);
    check_jpeg_decode(
        tjDecompress2(tj.h, bytes.data(), bytes.size(), cmyk.data(), i.width, 0, i.height, TJPF_CMYK, flags), tj, name);
    // PIL: Adobe CMYK is stored inverted ("CMYK;I"); RGB = (255 - C) * (255 - K) / 255 with its rounding.
    const bool inverted = has_adobe_marker(bytes);
    uint8_t* o = out.data_ptr<uint8_t>();
    for (size_t p = 0; p < size_t(i.width) * i.height; ++p) {
      int c[4];
      for (int k = 0; k < 4; ++k) c[k] = inverted ? 255 - cmyk[p * 4 + k] : cmyk[p * 4 + k];
      const int nk = 255 - c[3];
      for (int k = 0; k < 3; ++k) o[p * 3 + k] = static_cast<uint8_t>(std::clamp(nk - muldiv255(c[k], nk), 0, 255));
    }
    return out;
  }
  check_jpeg_decode(
      tjDecompress2(tj.h, bytes.data(), bytes.size(), out.data_ptr<uint8_t>(), i.width, 0, i.height, TJPF_RGB, flags),
      tj, name);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Writers

struct Plane {
  int64_t h = 0, w = 0;
};

at::Tensor cpu_contiguous(const at::Tensor& t) { return (t.device().is_cpu() ? t : t.to(at::kCPU)).contiguous(); }

void check_size(const std::string& path, int64_t h, int64_t w) {
  if (h <= 0 || w <= 0 || h > 0x7fffffff || w > 0x7fffffff)
    fail_file(path, "cannot write an image of size {}x{}", w, h);
}

void encode_png(const std::string& path, const void* data, size_t size, uint32_t w, uint32_t h, uint8_t color_type,
                uint8_t bit_depth, const Palette* palette) {
  SpngCtx c(SPNG_CTX_ENCODER);
  auto check = [&](int rc) {
    if (rc != 0) fail_file(path, "PNG encoding failed: {}", spng_strerror(rc));
  };
  check(spng_set_option(c.ctx, SPNG_ENCODE_TO_BUFFER, 1));
  spng_ihdr ihdr{};
  ihdr.width = w;
  ihdr.height = h;
  ihdr.bit_depth = bit_depth;
  ihdr.color_type = color_type;
  check(spng_set_ihdr(c.ctx, &ihdr));
  if (palette != nullptr) {
    spng_plte plte{};
    plte.n_entries = static_cast<uint32_t>(palette->size());
    for (size_t k = 0; k < palette->size(); ++k) {
      plte.entries[k].red = (*palette)[k][0];
      plte.entries[k].green = (*palette)[k][1];
      plte.entries[k].blue = (*palette)[k][2];
    }
    check(spng_set_plte(c.ctx, &plte));
  }
  check(spng_encode_image(c.ctx, data, size, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE));
  size_t len = 0;
  int rc = 0;
  void* buf = spng_get_png_buffer(c.ctx, &len, &rc);
  check(rc);
  if (buf == nullptr) fail_file(path, "PNG encoding produced no data");
  try {
    write_file_atomic(path, buf, len);
  } catch (...) {
    std::free(buf);
    throw;
  }
  std::free(buf);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Public API

ImageHeader read_image_header(const std::string& path) {
  const auto bytes = read_file(path);
  if (sniff(bytes, path) == Format::Png) {
    PngDecoder d(bytes, path);
    return png_header(d);
  }
  TjHandle tj(false);
  const JpegInfo i = jpeg_info(tj, bytes, path);
  ImageHeader h;
  h.width = i.width;
  h.height = i.height;
  h.channels = i.colorspace == TJCS_GRAY ? 1 : (i.colorspace == TJCS_CMYK || i.colorspace == TJCS_YCCK) ? 4 : 3;
  h.bit_depth = 8;
  h.format = "jpeg";
  return h;
}

at::Tensor decode_image_rgb(const std::vector<uint8_t>& bytes, const std::string& source_name) {
  return sniff(bytes, source_name) == Format::Png ? png_rgb(bytes, source_name) : jpeg_rgb(bytes, source_name);
}

at::Tensor read_image_rgb(const std::string& path) { return decode_image_rgb(read_file(path), path); }

at::Tensor read_label_png(const std::string& path) {
  const auto bytes = read_file(path);
  if (sniff(bytes, path) != Format::Png) fail_file(path, "a label map must be a PNG, this is a JPEG");
  return png_label(bytes, path);
}

Palette voc_palette(int entries) {
  if (entries < 0 || entries > 256) fail("voc_palette: {} entries (must be 0..256)", entries);
  Palette p(static_cast<size_t>(entries));
  for (int i = 0; i < entries; ++i) {
    int r = 0, g = 0, b = 0, c = i;
    for (int j = 0; j < 8; ++j) {
      r |= (c & 1) << (7 - j);
      g |= ((c >> 1) & 1) << (7 - j);
      b |= ((c >> 2) & 1) << (7 - j);
      c >>= 3;
    }
    p[i] = {static_cast<uint8_t>(r), static_cast<uint8_t>(g), static_cast<uint8_t>(b)};
  }
  return p;
}

void write_png_rgb(const std::string& path, const at::Tensor& rgb) {
  if (!rgb.defined() || rgb.dim() != 3 || rgb.size(2) != 3 || rgb.scalar_type() != at::kByte) {
    fail_file(path, "write_png_rgb needs a uint8 [H, W, 3] tensor, got {} {}",
              rgb.defined() ? std::string(c10::toString(rgb.scalar_type())) : "undefined",
              rgb.defined() ? fmt::format("{}", fmt::join(rgb.sizes(), "x")) : "");
  }
  check_size(path, rgb.size(0), rgb.size(1));
  at::Tensor c = cpu_contiguous(rgb);
  encode_png(path, c.data_ptr(), c.numel(), c.size(1), c.size(0), SPNG_COLOR_TYPE_TRUECOLOR, 8, nullptr);
}

void write_png_palette(const std::string& path, const at::Tensor& indices, const Palette& palette) {
  if (!indices.defined() || indices.dim() != 2 || !at::isIntegralType(indices.scalar_type(), /*includeBool=*/false)) {
    fail_file(path, "write_png_palette needs an integer [H, W] tensor of palette indices");
  }
  if (palette.empty() || palette.size() > 256)
    fail_file(path, "a PNG palette has 1..256 entries, got {}", palette.size());
  check_size(path, indices.size(0), indices.size(1));
  at::Tensor c = cpu_contiguous(indices);
  const int64_t lo = c.min().item<int64_t>(), hi = c.max().item<int64_t>();
  if (lo < 0 || hi >= static_cast<int64_t>(palette.size())) {
    fail_file(path, "palette indices range over [{}, {}] but the palette has {} entries", lo, hi, palette.size());
  }
  at::Tensor u8 = c.to(at::kByte).contiguous();
  encode_png(path, u8.data_ptr(), u8.numel(), u8.size(1), u8.size(0), SPNG_COLOR_TYPE_INDEXED, 8, &palette);
}

void write_png_gray(const std::string& path, const at::Tensor& values, bool sixteen_bit) {
  if (!values.defined() || values.dim() != 2 || !at::isIntegralType(values.scalar_type(), /*includeBool=*/false)) {
    fail_file(path, "write_png_gray needs an integer [H, W] tensor");
  }
  check_size(path, values.size(0), values.size(1));
  at::Tensor c = cpu_contiguous(values);
  const int64_t lo = c.min().item<int64_t>(), hi = c.max().item<int64_t>();
  const int64_t top = sixteen_bit ? 65535 : 255;
  if (lo < 0 || hi > top) {
    fail_file(path, "gray values range over [{}, {}], outside [0, {}] of a {}-bit PNG", lo, hi, top,
              sixteen_bit ? 16 : 8);
  }
  if (sixteen_bit) {
    // Host-endian uint16 samples (libspng swaps to PNG's big-endian).
    at::Tensor v = c.to(at::kInt).contiguous();
    std::vector<uint16_t> s(static_cast<size_t>(v.numel()));
    const int32_t* p = v.data_ptr<int32_t>();
    for (size_t k = 0; k < s.size(); ++k) s[k] = static_cast<uint16_t>(p[k]);
    encode_png(path, s.data(), s.size() * 2, v.size(1), v.size(0), SPNG_COLOR_TYPE_GRAYSCALE, 16, nullptr);
  } else {
    at::Tensor u8 = c.to(at::kByte).contiguous();
    encode_png(path, u8.data_ptr(), u8.numel(), u8.size(1), u8.size(0), SPNG_COLOR_TYPE_GRAYSCALE, 8, nullptr);
  }
}

void write_jpeg(const std::string& path, const at::Tensor& rgb, int quality) {
  if (!rgb.defined() || rgb.dim() != 3 || rgb.size(2) != 3 || rgb.scalar_type() != at::kByte) {
    fail_file(path, "write_jpeg needs a uint8 [H, W, 3] tensor");
  }
  if (quality < 1 || quality > 100) fail_file(path, "JPEG quality {} outside 1..100", quality);
  if (rgb.size(0) <= 0 || rgb.size(1) <= 0 || rgb.size(0) > 65535 || rgb.size(1) > 65535) {
    fail_file(path, "cannot write a JPEG of size {}x{} (1..65535 each)", rgb.size(1), rgb.size(0));
  }
  at::Tensor c = cpu_contiguous(rgb);
  TjHandle tj(true);
  unsigned char* buf = nullptr;
  unsigned long len = 0;
  // 4:2:0 chroma subsampling and the accurate DCT, as PIL's JPEG writer by default.
  if (tjCompress2(tj.h, c.data_ptr<uint8_t>(), static_cast<int>(c.size(1)), 0, static_cast<int>(c.size(0)), TJPF_RGB,
                  &buf, &len, TJSAMP_420, quality, 0) != 0) {
    std::string why = tjGetErrorStr2(tj.h);
    tjFree(buf);
    fail_file(path, "JPEG encoding failed: {}", why);
  }
  try {
    write_file_atomic(path, buf, len);
  } catch (...) {
    tjFree(buf);
    throw;
  }
  tjFree(buf);
}

}  // namespace gb
