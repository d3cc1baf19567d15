#include "harness/io/image_io.h"

#include "harness/io/safetensors.h"
#include "tests/test_support.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

namespace gb {
namespace {

// The goldens of tools/parity/make_io_goldens.py.
std::string data_dir() { return std::string(GB_SOURCE_DIR) + "/tests/io/data"; }
using namespace test;  // ScratchDir, read_bytes, write_bytes, expect_user_error

std::string img(const std::string& name) { return data_dir() + "/images/" + name; }

// PIL's decode of every golden image (tools/parity/make_io_goldens.py).
const SafetensorsFile& expected() {
  static SafetensorsFile f(data_dir() + "/images_expected.safetensors");
  return f;
}

std::vector<std::string> golden_names(const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& k : expected().keys())
    if (k.rfind(prefix, 0) == 0) out.push_back(k.substr(prefix.size()));
  return out;
}

TEST(ImageIO, PngRgbMatchesPilForEveryColourTypeAndDepth) {
  int checked = 0;
  for (const auto& name : golden_names("rgb/")) {
    if (name.size() < 4 || name.substr(name.size() - 4) != ".png") continue;
    SCOPED_TRACE(name);
    at::Tensor got = read_image_rgb(img(name));
    at::Tensor want = expected().load("rgb/" + name);
    ASSERT_EQ(got.scalar_type(), at::kByte);
    ASSERT_EQ(got.sizes(), want.sizes());
    if (name == "ct0_16bit.png" || name == "pil_gray16.png") {
      // Deliberate difference: PIL clips 16-bit gray to 255 in convert('RGB'); we keep the high byte, as PIL
      // itself does for 16-bit colour.
      at::Tensor raw = expected().load("label/" + name);
      EXPECT_TRUE(at::equal(got, at::__rshift__(raw, 8).to(at::kByte).unsqueeze(-1).expand_as(got)));
    } else {
      EXPECT_TRUE(at::equal(got, want));
    }
    ++checked;
  }
  EXPECT_EQ(checked, 20);
}

TEST(ImageIO, PngHeaders) {
  auto h = read_image_header(img("ct3_4bit.png"));
  EXPECT_EQ(h.format, "png");
  EXPECT_EQ(h.width, 13);
  EXPECT_EQ(h.height, 7);
  EXPECT_TRUE(h.palette);
  EXPECT_EQ(h.channels, 1);
  EXPECT_EQ(h.bit_depth, 4);
  h = read_image_header(img("ct4_16bit.png"));
  EXPECT_EQ(h.channels, 2);
  EXPECT_EQ(h.bit_depth, 16);
  EXPECT_FALSE(h.palette);
  EXPECT_EQ(read_image_header(img("ct6_8bit.png")).channels, 4);
  EXPECT_EQ(read_image_header(img("ct2_16bit.png")).channels, 3);
}

TEST(ImageIO, PaletteLabelsGiveIndices) {
  for (const auto& name : golden_names("label/")) {
    SCOPED_TRACE(name);
    at::Tensor got = read_label_png(img(name));
    at::Tensor want = expected().load("label/" + name);
    ASSERT_EQ(got.scalar_type(), at::kLong);
    ASSERT_EQ(got.sizes(), want.sizes());
    const auto h = read_image_header(img(name));
    if (!h.palette && (h.bit_depth == 2 || h.bit_depth == 4)) {
      // Deliberate difference: PIL scales 2- and 4-bit gray to 8 bits (x85, x17); labels keep raw values.
      EXPECT_TRUE(at::equal(got * (255 / ((1 << h.bit_depth) - 1)), want));
    } else {
      EXPECT_TRUE(at::equal(got, want));
    }
  }
  // The PIL-written VOC label: 255 (ignore) survives as an index, not as a colour.
  at::Tensor voc = read_label_png(img("pil_voc_palette.png"));
  EXPECT_EQ(voc[0][0].item<int64_t>(), 255);
  EXPECT_LE(voc.slice(0, 1).max().item<int64_t>(), 20);
  // Raw 16-bit values.
  EXPECT_GT(read_label_png(img("pil_gray16.png")).max().item<int64_t>(), 255);
}

TEST(ImageIO, LabelRejectsColourAndJpeg) {
  expect_user_error([] { read_label_png(img("ct2_8bit.png")); }, {"ct2_8bit.png", "RGB"});
  expect_user_error([] { read_label_png(img("ct4_8bit.png")); }, {"ct4_8bit.png", "gray+alpha"});
  expect_user_error([] { read_label_png(img("ct6_16bit.png")); }, {"ct6_16bit.png", "RGBA"});
  expect_user_error([] { read_label_png(img("pil_420.jpg")); }, {"pil_420.jpg", "JPEG"});
}

TEST(ImageIO, VocPaletteMatchesTheReference) {
  const Palette p = voc_palette();
  ASSERT_EQ(p.size(), 256u);
  EXPECT_EQ(p[0], (std::array<uint8_t, 3>{0, 0, 0}));
  EXPECT_EQ(p[1], (std::array<uint8_t, 3>{128, 0, 0}));
  EXPECT_EQ(p[15], (std::array<uint8_t, 3>{192, 128, 128}));   // person
  EXPECT_EQ(p[255], (std::array<uint8_t, 3>{224, 224, 192}));  // ignore
  // The PIL-written VOC label expands to the same colours.
  at::Tensor idx = read_label_png(img("pil_voc_palette.png"));
  at::Tensor rgb = read_image_rgb(img("pil_voc_palette.png"));
  for (int64_t y = 0; y < idx.size(0); ++y) {
    for (int64_t x = 0; x < idx.size(1); ++x) {
      const auto& c = p[idx[y][x].item<int64_t>()];
      for (int k = 0; k < 3; ++k) ASSERT_EQ(rgb[y][x][k].item<int>(), c[k]);
    }
  }
}

// JPEG: PIL and TurboJPEG share libjpeg-turbo's accurate integer IDCT and fancy upsampling, so the decode is
// bit-exact (checked for 4:2:0, 4:2:2, 4:4:4, progressive, gray and Adobe CMYK).
TEST(ImageIO, JpegDecodeMatchesPilExactly) {
  int checked = 0;
  for (const auto& name : golden_names("rgb/")) {
    if (name.substr(name.size() - 4) != ".jpg") continue;
    SCOPED_TRACE(name);
    at::Tensor got = read_image_rgb(img(name));
    at::Tensor want = expected().load("rgb/" + name);
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_EQ((got.to(at::kInt) - want.to(at::kInt)).abs().max().item<int>(), 0);
    ++checked;
  }
  EXPECT_EQ(checked, 6);
  auto h = read_image_header(img("pil_gray.jpg"));
  EXPECT_EQ(h.format, "jpeg");
  EXPECT_EQ(h.channels, 1);
  EXPECT_EQ(h.width, 37);
  EXPECT_EQ(h.height, 23);
  EXPECT_EQ(read_image_header(img("pil_cmyk.jpg")).channels, 4);
  // decode_image_rgb on bytes in memory is the same decode.
  const std::string b = read_bytes(img("pil_420.jpg"));
  EXPECT_TRUE(
      at::equal(decode_image_rgb(std::vector<uint8_t>(b.begin(), b.end()), "mem"), read_image_rgb(img("pil_420.jpg"))));
}

TEST(ImageIO, WritersRoundTrip) {
  ScratchDir dir;
  at::manual_seed(3);
  // RGB.
  at::Tensor rgb = at::randint(0, 256, {9, 14, 3}, at::kByte);
  write_png_rgb(dir / "rgb.png", rgb);
  EXPECT_TRUE(at::equal(read_image_rgb(dir / "rgb.png"), rgb));
  // A non-contiguous view is written as what it shows.
  at::Tensor view = rgb.transpose(0, 1);
  write_png_rgb(dir / "view.png", view);
  EXPECT_TRUE(at::equal(read_image_rgb(dir / "view.png"), view));
  // Palette (VOC by default) with the ignore index 255, from int64 labels.
  at::Tensor lab = at::randint(0, 21, {8, 11}, at::kLong);
  lab[2][3] = 255;
  write_png_palette(dir / "lab.png", lab);
  EXPECT_TRUE(read_image_header(dir / "lab.png").palette);
  EXPECT_TRUE(at::equal(read_label_png(dir / "lab.png"), lab));
  const Palette voc = voc_palette();
  at::Tensor lab_rgb = read_image_rgb(dir / "lab.png");
  EXPECT_EQ(lab_rgb[2][3][0].item<int>(), voc[255][0]);
  // A short custom palette.
  write_png_palette(dir / "small.png", at::tensor({0, 1, 1, 0}, at::kByte).reshape({2, 2}), {{1, 2, 3}, {4, 5, 6}});
  EXPECT_EQ(read_image_rgb(dir / "small.png")[0][1][2].item<int>(), 6);
  // Gray 8 and 16 bit.
  at::Tensor g8 = at::randint(0, 256, {5, 6}, at::kByte);
  write_png_gray(dir / "g8.png", g8);
  EXPECT_EQ(read_image_header(dir / "g8.png").bit_depth, 8);
  EXPECT_TRUE(at::equal(read_label_png(dir / "g8.png"), g8.to(at::kLong)));
  at::Tensor g16 = at::randint(0, 65536, {5, 6}, at::kLong);
  g16[0][0] = 65535;
  g16[0][1] = 0;
  write_png_gray(dir / "g16.png", g16, /*sixteen_bit=*/true);
  EXPECT_EQ(read_image_header(dir / "g16.png").bit_depth, 16);
  EXPECT_TRUE(at::equal(read_label_png(dir / "g16.png"), g16));
  // JPEG: lossy, but a smooth image comes back close, and re-reading is deterministic.
  at::Tensor smooth =
      (at::arange(32, at::kFloat).view({1, 32, 1}) * 4 + at::arange(24, at::kFloat).view({24, 1, 1}) * 3)
          .expand({24, 32, 3})
          .clamp(0, 255)
          .to(at::kByte)
          .contiguous();
  write_jpeg(dir / "s.jpg", smooth, 95);
  at::Tensor back = read_image_rgb(dir / "s.jpg");
  EXPECT_EQ(back.sizes(), smooth.sizes());
  EXPECT_LE((back.to(at::kInt) - smooth.to(at::kInt)).abs().max().item<int>(), 8);
}

TEST(ImageIO, WritersRejectBadInput) {
  ScratchDir dir;
  const std::string p = dir / "x.png";
  expect_user_error([&] { write_png_rgb(p, at::zeros({4, 4}, at::kByte)); }, {p, "[H, W, 3]"});
  expect_user_error([&] { write_png_rgb(p, at::zeros({4, 4, 3}, at::kFloat)); }, {p});
  expect_user_error([&] { write_png_rgb(p, at::zeros({0, 4, 3}, at::kByte)); }, {p, "size"});
  expect_user_error([&] { write_png_palette(p, at::full({2, 2}, 21, at::kLong), voc_palette(21)); }, {p, "21 entries"});
  expect_user_error([&] { write_png_palette(p, at::full({2, 2}, -1, at::kLong)); }, {p, "[-1, -1]"});
  expect_user_error([&] { write_png_palette(p, at::zeros({2, 2}, at::kFloat)); }, {p, "integer"});
  expect_user_error([&] { write_png_palette(p, at::zeros({2, 2}, at::kByte), Palette{}); }, {p, "1..256"});
  expect_user_error([&] { write_png_gray(p, at::full({2, 2}, 256, at::kInt)); }, {p, "8-bit"});
  expect_user_error([&] { write_png_gray(p, at::full({2, 2}, 70000, at::kInt), true); }, {p, "16-bit"});
  expect_user_error([&] { write_jpeg(dir / "x.jpg", at::zeros({4, 4, 3}, at::kByte), 0); }, {"x.jpg", "quality"});
  expect_user_error([&] { write_png_rgb(dir / "no/dir/x.png", at::zeros({2, 2, 3}, at::kByte)); }, {"no/dir/x.png"});
  EXPECT_FALSE(std::filesystem::exists(p));
}

TEST(ImageIO, CorruptAndTruncatedFilesAreUserErrors) {
  ScratchDir dir;
  expect_user_error([&] { read_image_rgb(dir / "absent.png"); }, {"absent.png", "cannot open"});
  write_bytes(dir / "empty.png", "");
  expect_user_error([&] { read_image_rgb(dir / "empty.png"); }, {"empty.png", "empty"});
  write_bytes(dir / "text.png", "hello, not an image");
  expect_user_error([&] { read_image_rgb(dir / "text.png"); }, {"text.png", "not a PNG or JPEG"});
  expect_user_error([&] { read_image_header(dir / "text.png"); }, {"text.png"});
  expect_user_error([&] { read_image_rgb(dir.str()); }, {dir.str()});

  // Truncated PNG: cut inside the image data, and cut right after the signature.
  const std::string png = read_bytes(img("ct2_8bit.png"));
  write_bytes(dir / "cut.png", png.substr(0, png.size() / 2));
  expect_user_error([&] { read_image_rgb(dir / "cut.png"); }, {"cut.png", "PNG"});
  expect_user_error([&] { read_label_png(dir / "cut.png"); }, {"cut.png"});
  write_bytes(dir / "sig.png", png.substr(0, 8));
  expect_user_error([&] { read_image_header(dir / "sig.png"); }, {"sig.png", "PNG"});
  // A flipped bit in the image data fails its CRC.
  std::string crc = png;
  crc[png.size() - 20] ^= 0x01;
  write_bytes(dir / "crc.png", crc);
  expect_user_error([&] { read_image_rgb(dir / "crc.png"); }, {"crc.png", "corrupt PNG"});

  // Truncated JPEG: PIL refuses it ("image file is truncated"); so do we.
  const std::string jpg = read_bytes(img("pil_420.jpg"));
  write_bytes(dir / "cut.jpg", jpg.substr(0, jpg.size() * 2 / 3));
  expect_user_error([&] { read_image_rgb(dir / "cut.jpg"); }, {"cut.jpg", "truncated JPEG"});
  write_bytes(dir / "noeoi.jpg", jpg.substr(0, jpg.size() - 2));
  expect_user_error([&] { read_image_rgb(dir / "noeoi.jpg"); }, {"noeoi.jpg", "truncated JPEG"});
  write_bytes(dir / "head.jpg", jpg.substr(0, 40));
  expect_user_error([&] { read_image_rgb(dir / "head.jpg"); }, {"head.jpg", "JPEG"});
  expect_user_error([&] { read_image_header(dir / "head.jpg"); }, {"head.jpg", "JPEG"});
}

// Fuzz-style: every truncation and random corruption of valid files is an image or a UserError, never a crash.
TEST(ImageIO, TruncationsAndCorruptionNeverCrash) {
  ScratchDir dir;
  std::mt19937 rng(99);
  for (const char* name :
       {"ct3_4bit.png", "ct6_16bit.png", "pil_voc_palette.png", "pil_420.jpg", "pil_progressive.jpg", "pil_cmyk.jpg"}) {
    SCOPED_TRACE(name);
    const std::string good = read_bytes(img(name));
    const std::string p = dir / "f";
    // A PNG cut after its image data (inside the last IDAT's CRC or the IEND chunk, the final 16 bytes here)
    // still holds the whole image; PIL reads it, and so do we.
    const bool png = good[1] == 'P';
    for (size_t len = 0; len < good.size(); len += 1 + len / 64) {
      write_bytes(p, good.substr(0, len));
      if (!png || len < good.size() - 16) {
        EXPECT_THROW(read_image_rgb(p), UserError) << "truncated to " << len;
      }
      try {
        read_label_png(p);
      } catch (const UserError&) {}
    }
    for (int trial = 0; trial < 150; ++trial) {
      write_bytes(p, flip_random_bytes(good, rng, 3));
      try {
        at::Tensor t = read_image_rgb(p);
        EXPECT_EQ(t.dim(), 3);
      } catch (const UserError&) {}
      try {
        read_image_header(p);
        read_label_png(p);
      } catch (const UserError&) {}
    }
  }
}

}  // namespace
}  // namespace gb
