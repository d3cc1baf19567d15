#include "reports/png_memory.h"

#include "harness/core/errors.h"

#include <spng.h>

#include <cstdlib>
#include <cstring>
#include <memory>

namespace gb::reports {

std::vector<uint8_t> encode_png_rgb(const std::vector<uint8_t>& rgb, int64_t width, int64_t height) {
  if (static_cast<int64_t>(rgb.size()) != width * height * 3 || width <= 0 || height <= 0)
    fail("encode_png_rgb: buffer of {} bytes does not hold {}x{} RGB", rgb.size(), width, height);
  std::unique_ptr<spng_ctx, void (*)(spng_ctx*)> ctx(spng_ctx_new(SPNG_CTX_ENCODER), spng_ctx_free);
  if (!ctx) fail("encode_png_rgb: out of memory");
  spng_set_option(ctx.get(), SPNG_ENCODE_TO_BUFFER, 1);
  spng_ihdr ihdr{};
  ihdr.width = static_cast<uint32_t>(width);
  ihdr.height = static_cast<uint32_t>(height);
  ihdr.bit_depth = 8;
  ihdr.color_type = SPNG_COLOR_TYPE_TRUECOLOR;
  spng_set_ihdr(ctx.get(), &ihdr);
  int err = spng_encode_image(ctx.get(), rgb.data(), rgb.size(), SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
  if (err) fail("encode_png_rgb: {}", spng_strerror(err));
  size_t len = 0;
  void* buf = spng_get_png_buffer(ctx.get(), &len, &err);
  if (!buf || err) fail("encode_png_rgb: {}", spng_strerror(err));
  std::vector<uint8_t> out(static_cast<uint8_t*>(buf), static_cast<uint8_t*>(buf) + len);
  std::free(buf);
  return out;
}

namespace {
const char* kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

std::string base64_encode(const std::vector<uint8_t>& b) {
  std::string out;
  out.reserve((b.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < b.size(); i += 3) {
    const uint32_t v = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (i + 1 == b.size()) {
    const uint32_t v = b[i] << 16;
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == b.size()) {
    const uint32_t v = (b[i] << 16) | (b[i + 1] << 8);
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::vector<uint8_t> base64_decode(const std::string& s) {
  auto val = [](char c) -> int {
    const char* p = std::strchr(kB64, c);
    return (c && p) ? static_cast<int>(p - kB64) : -1;
  };
  if (s.size() % 4 != 0) fail("base64: length {} is not a multiple of 4", s.size());
  std::vector<uint8_t> out;
  for (size_t i = 0; i < s.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      if (s[i + k] == '=') {
        v[k] = 0;
        ++pad;
      } else if ((v[k] = val(s[i + k])) < 0) {
        fail("base64: invalid character at {}", i + k);
      }
    }
    const uint32_t x = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out.push_back((x >> 16) & 255);
    if (pad < 2) out.push_back((x >> 8) & 255);
    if (pad < 1) out.push_back(x & 255);
  }
  return out;
}

}  // namespace gb::reports
