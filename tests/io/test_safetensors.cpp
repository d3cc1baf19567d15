#include "harness/io/safetensors.h"

#include "tests/test_support.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

namespace gb {
namespace {

// The goldens of tools/parity/make_io_goldens.py.
std::string data_dir() { return std::string(GB_SOURCE_DIR) + "/tests/io/data"; }
using namespace test;  // ScratchDir, read_bytes, write_bytes, expect_user_error

at::Tensor sample(at::ScalarType st, at::IntArrayRef shape, int seed) {
  at::manual_seed(seed);
  if (st == at::kBool) return at::rand(shape) > 0.5;
  if (at::isFloatingType(st)) return (at::randn(shape) * 100).to(st);
  int64_t lo = st == at::kByte ? 0 : -100, hi = 100;
  if (st == at::kLong) return at::randint(-(int64_t(1) << 40), int64_t(1) << 40, shape, at::kLong);
  return at::randint(lo, hi, shape, at::TensorOptions().dtype(st));
}

TEST(Safetensors, RoundTripEveryDtype) {
  ScratchDir dir;
  const std::vector<std::pair<StDType, at::ScalarType>> types = {
      {StDType::F16, at::kHalf},   {StDType::BF16, at::kBFloat16}, {StDType::F32, at::kFloat},
      {StDType::F64, at::kDouble}, {StDType::I64, at::kLong},      {StDType::I32, at::kInt},
      {StDType::I16, at::kShort},  {StDType::I8, at::kChar},       {StDType::U8, at::kByte},
      {StDType::BOOL, at::kBool}};
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  int seed = 0;
  for (const auto& [sd, st] : types) {
    const std::string n = to_string(sd);
    EXPECT_EQ(st_dtype_of(at::empty({1}, at::TensorOptions().dtype(st))), sd);
    EXPECT_EQ(element_size(sd), static_cast<size_t>(c10::elementSize(st)));
    tensors.emplace_back(n + ".plain", sample(st, {3, 5, 2}, ++seed));
    // Non-contiguous inputs: a transpose and a strided slice.
    tensors.emplace_back(n + ".transposed", sample(st, {4, 6}, ++seed).t());
    tensors.emplace_back(n + ".strided", sample(st, {7, 9}, ++seed).slice(1, 1, 9, 3));
    tensors.emplace_back(n + ".scalar", sample(st, {}, ++seed));
    tensors.emplace_back(n + ".empty", sample(st, {0, 4}, ++seed));
  }
  ASSERT_FALSE(tensors[1].second.is_contiguous());
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"unicode", "h\u00e9llo"}, {"empty", ""}};
  const std::string path = dir / "all.safetensors";
  save_safetensors(path, tensors, meta);

  // Header length is a multiple of 8 (data aligned like the reference writer's).
  const std::string raw = read_bytes(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(raw[i]);
  EXPECT_EQ(n % 8, 0u);

  SafetensorsFile f(path);
  EXPECT_EQ(f.metadata(), meta);
  EXPECT_EQ(f.keys().size(), tensors.size());
  const auto keys = f.keys();
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  for (const auto& [name, t] : tensors) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(f.contains(name));
    const auto& info = f.info(name);
    EXPECT_EQ(info.shape, t.sizes().vec());
    EXPECT_EQ(info.dtype, st_dtype_of(t));
    at::Tensor back = f.load(name);
    EXPECT_EQ(back.scalar_type(), t.scalar_type());
    EXPECT_EQ(back.sizes(), t.sizes());
    EXPECT_TRUE(back.is_contiguous());
    EXPECT_TRUE(at::equal(back, t));
  }
  auto all = load_safetensors(path);
  EXPECT_EQ(all.size(), tensors.size());
  expect_user_error([&] { f.load("nope"); }, {path, "nope"});

  // The map overload writes the same tensors.
  std::map<std::string, at::Tensor> m(tensors.begin(), tensors.end());
  save_safetensors(dir / "map.safetensors", m);
  SafetensorsFile g(dir / "map.safetensors");
  EXPECT_TRUE(g.metadata().empty());
  for (const auto& [name, t] : m) EXPECT_TRUE(at::equal(g.load(name), t)) << name;
}

TEST(Safetensors, EmptyFileHasNoTensors) {
  ScratchDir dir;
  save_safetensors(dir / "e.safetensors", std::vector<std::pair<std::string, at::Tensor>>{});
  SafetensorsFile f(dir / "e.safetensors");
  EXPECT_TRUE(f.keys().empty());
}

TEST(Safetensors, WriterRejectsBadInput) {
  ScratchDir dir;
  const std::string p = dir / "w.safetensors";
  expect_user_error([&] { save_safetensors(p, {{"a", at::zeros({2})}, {"a", at::zeros({2})}}); }, {p, "'a'"});
  expect_user_error([&] { save_safetensors(p, {{"c", at::zeros({2}, at::kComplexFloat)}}); }, {p, "'c'"});
  expect_user_error([&] { save_safetensors(p, {{"__metadata__", at::zeros({2})}}); }, {p});
  expect_user_error(
      [&] {
        save_safetensors(dir / "no/such/dir/x.safetensors", {{"a", at::zeros({2})}});
      },
      {"no/such/dir"});
  EXPECT_FALSE(std::filesystem::exists(p));
}

// Written by the Python reference (tools/parity/make_io_goldens.py).
TEST(Safetensors, ReadsReferenceGolden) {
  const std::string path = data_dir() + "/golden.safetensors";
  SafetensorsFile f(path);
  EXPECT_EQ(f.metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"note", "goca-bench golden"}}));
  auto T = [](std::vector<double> v, at::ScalarType st) { return at::tensor(v, at::kDouble).to(st); };
  EXPECT_TRUE(at::equal(f.load("f32"), at::arange(6, at::kFloat).reshape({2, 3}) * 0.5 - 1));
  EXPECT_TRUE(at::equal(f.load("f16"), at::tensor({0.1f, -2.5f, 65504.0f, 1e-4f}).to(at::kHalf)));
  EXPECT_TRUE(at::equal(f.load("bf16"), at::tensor({1.0f, -3.140625f, 1e30f}).to(at::kBFloat16)));
  EXPECT_TRUE(at::equal(f.load("f64"), at::tensor({M_PI, -M_E}, at::kDouble)));
  EXPECT_TRUE(at::equal(f.load("i64"), at::tensor({-(int64_t(1) << 40), int64_t(7)}, at::kLong)));
  EXPECT_TRUE(at::equal(f.load("i32"), T({-5, 2147483647}, at::kInt)));
  EXPECT_TRUE(at::equal(f.load("i16"), T({-32768, 12}, at::kShort)));
  EXPECT_TRUE(at::equal(f.load("i8"), T({-128, 127}, at::kChar)));
  EXPECT_TRUE(at::equal(f.load("u8"), T({0, 255, 3}, at::kByte)));
  EXPECT_TRUE(at::equal(f.load("bool"), T({1, 0, 1}, at::kBool)));
  at::Tensor s = f.load("scalar");
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.item<float>(), 2.5f);
  EXPECT_EQ(f.load("empty").sizes(), (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE(at::equal(f.load("i32_t"), at::arange(6, at::kInt).reshape({2, 3}).t()));
  EXPECT_EQ(f.info("f16").dtype, StDType::F16);
  // Offsets as safetensors 0.4.5's save_file lays the data out (by dtype alignment, largest first, then name).
  EXPECT_EQ(f.info("f16").begin, 98u);
  EXPECT_EQ(f.info("f16").end, 106u);
}

// --- malformed files, written byte by byte -------------------------------------------------------------

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(n >> (8 * i));
  return s;
}
std::string file_of(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

struct Malformed {
  const char* what;
  std::string bytes;
  const char* needle;
};

TEST(Safetensors, MalformedFilesAreUserErrors) {
  ScratchDir dir;
  const std::string d8(8, '\0');
  const std::vector<Malformed> cases = {
      {"empty file", "", "too short"},
      {"short header length", std::string("\x10\0\0", 3), "too short"},
      {"header length past EOF", le64(1000) + "{}", "past the end"},
      {"header length absurd", le64(uint64_t(1) << 62) + "{}", "implausible"},
      {"header length zero", le64(0), "header of 0 bytes"},
      {"bad JSON", file_of("{\"a\": {\"dtype\": ", ""), "invalid safetensors header JSON"},
      {"not JSON at all", file_of("PK\x03\x04garbage", ""), "does not start with"},
      {"JSON not an object", file_of("{\"a\": [1, 2]}", ""), "not an object"},
      {"trailing garbage after JSON", file_of("{} x", ""), "invalid safetensors header JSON"},
      {"unknown dtype", file_of(R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]}})", "xx"),
       "unknown or unsupported dtype 'Q4'"},
      {"float8 dtype", file_of(R"({"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", "xx"), "F8_E4M3"},
      {"dtype not a string", file_of(R"({"a":{"dtype":4,"shape":[2],"data_offsets":[0,2]}})", "xx"),
       "dtype is not a string"},
      {"missing shape", file_of(R"({"a":{"dtype":"U8","data_offsets":[0,2]}})", "xx"), "missing 'shape'"},
      {"missing offsets", file_of(R"({"a":{"dtype":"U8","shape":[2]}})", "xx"), "missing 'data_offsets'"},
      {"negative dim", file_of(R"({"a":{"dtype":"U8","shape":[-2],"data_offsets":[0,2]}})", "xx"), "negative"},
      {"float dim", file_of(R"({"a":{"dtype":"U8","shape":[2.0],"data_offsets":[0,2]}})", "xx"), "non-integer"},
      {"shape overflow",
       file_of(R"({"a":{"dtype":"F64","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})", d8), "overflows"},
      {"offsets not a pair", file_of(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0]}})", "xx"),
       "two non-negative"},
      {"negative offset", file_of(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[-1,1]}})", "xx"),
       "two non-negative"},
      {"offsets reversed", file_of(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[2,0]}})", "xx"), "end before"},
      {"offsets past the end", file_of(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", d8),
       "run past the end"},
      {"size != prod(shape)*itemsize", file_of(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", d8),
       "expected 3 x 4 bytes"},
      {"overlapping ranges",
       file_of(
           R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
           d8),
       "overlap"},
      {"gap between ranges",
       file_of(
           R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}})",
           std::string(6, 'x')),
       "gap"},
      {"range not starting at 0", file_of(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})", "xxxx"), "gap"},
      {"trailing data", file_of(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", "xxxx"), "trailing"},
      {"metadata not strings", file_of(R"({"__metadata__":{"a":1}})", ""), "__metadata__['a']"},
      {"metadata not an object", file_of(R"({"__metadata__":[]})", ""), "__metadata__"},
      {"tensor entry not an object", file_of(R"({"a":3})", ""), "entry is not an object"},
      {"invalid UTF-8 in header", file_of("{\"\xff\":{}}", ""), "invalid safetensors header JSON"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].what);
    const std::string p = dir / ("bad" + std::to_string(i) + ".safetensors");
    write_bytes(p, cases[i].bytes);
    expect_user_error([&] { SafetensorsFile f(p); }, {p, cases[i].needle});
    expect_user_error([&] { load_safetensors(p); }, {p});
    expect_user_error([&] { SafetensorsCheckpoint::open(p); }, {p});
  }
}

TEST(Safetensors, BoolBytesMustBeZeroOrOne) {
  ScratchDir dir;
  const std::string p = dir / "b.safetensors";
  write_bytes(p, file_of(R"({"a":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})", std::string("\x01\x02\x00", 3)));
  SafetensorsFile f(p);  // lazy: the header is fine
  expect_user_error([&] { f.load("a"); }, {p, "'a'", "value 2"});
}

TEST(Safetensors, MissingOrNonRegularFile) {
  ScratchDir dir;
  expect_user_error([&] { SafetensorsFile f(dir / "absent.safetensors"); }, {"absent.safetensors", "cannot open"});
  expect_user_error([&] { SafetensorsFile f(dir.str()); }, {dir.str()});
  expect_user_error([&] { SafetensorsCheckpoint::open(dir / "absent.safetensors"); }, {"absent.safetensors"});
}

// Fuzz-style: every truncation of a valid file is an error; random byte corruption is an error or loads.
TEST(Safetensors, TruncationsAndCorruptionNeverCrash) {
  ScratchDir dir;
  const std::string good = read_bytes(data_dir() + "/golden.safetensors");
  const std::string p = dir / "t.safetensors";
  for (size_t len = 0; len < good.size(); ++len) {
    write_bytes(p, good.substr(0, len));
    EXPECT_THROW(SafetensorsFile f(p), UserError) << "truncated to " << len;
  }
  std::mt19937 rng(1234);
  int loaded = 0, rejected = 0;
  for (int trial = 0; trial < 400; ++trial) {
    write_bytes(p, flip_random_bytes(good, rng, 4));
    try {
      SafetensorsFile f(p);
      for (const auto& name : f.keys()) {
        try {
          f.load(name);
        } catch (const UserError&) {}
      }
      ++loaded;
    } catch (const UserError&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(loaded, 0);
}

// --- checkpoints: sharded index, diffusers folders ------------------------------------------------------

TEST(SafetensorsCheckpoint, ShardedIndex) {
  ScratchDir dir;
  at::Tensor a = at::arange(4, at::kFloat), b = at::ones({2, 2}, at::kHalf), c = at::arange(3, at::kLong);
  save_safetensors(dir / "m-00001-of-00002.safetensors", {{"a", a}, {"b", b}});
  save_safetensors(dir / "m-00002-of-00002.safetensors", {{"c", c}});
  write_bytes(dir / "m.safetensors.index.json", R"({"metadata": {"total_size": 48}, "weight_map": {
      "a": "m-00001-of-00002.safetensors", "b": "m-00001-of-00002.safetensors", "c": "m-00002-of-00002.safetensors"}})");
  auto ck = SafetensorsCheckpoint::open(dir / "m.safetensors.index.json");
  EXPECT_EQ(ck.keys(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(ck.files().size(), 2u);
  EXPECT_TRUE(at::equal(ck.load("a"), a));
  EXPECT_TRUE(at::equal(ck.load("b"), b));
  EXPECT_TRUE(at::equal(ck.load("c"), c));
  EXPECT_EQ(ck.info("c").dtype, StDType::I64);
  EXPECT_EQ(ck.file_of("c"), dir / "m-00002-of-00002.safetensors");
  EXPECT_FALSE(ck.contains("d"));
  expect_user_error([&] { ck.load("d"); }, {"m-00001-of-00002.safetensors", "'d'"});
  expect_user_error([&] { ck.info("d"); }, {"'d'"});
  expect_user_error([&] { ck.file_of("d"); }, {"'d'"});

  // Index pointing to a missing shard.
  write_bytes(dir / "missing.safetensors.index.json", R"({"weight_map": {"a": "gone.safetensors"}})");
  expect_user_error([&] { SafetensorsCheckpoint::open(dir / "missing.safetensors.index.json"); },
                    {"missing.safetensors.index.json", "gone.safetensors", "does not exist"});
  // Index naming a tensor its shard does not hold.
  write_bytes(dir / "wrong.safetensors.index.json", R"({"weight_map": {"c": "m-00001-of-00002.safetensors"}})");
  expect_user_error([&] { SafetensorsCheckpoint::open(dir / "wrong.safetensors.index.json"); },
                    {"wrong.safetensors.index.json", "'c'", "does not hold"});
  // Malformed index files.
  write_bytes(dir / "bad1.safetensors.index.json", "{\"weight_map\": ");
  expect_user_error([&] { SafetensorsCheckpoint::open(dir / "bad1.safetensors.index.json"); }, {"bad1", "invalid"});
  write_bytes(dir / "bad2.safetensors.index.json", R"({"metadata": {}})");
  expect_user_error([&] { SafetensorsCheckpoint::open(dir / "bad2.safetensors.index.json"); }, {"bad2", "weight_map"});
  write_bytes(dir / "bad3.safetensors.index.json", R"({"weight_map": {"a": 1}})");
  expect_user_error([&] { SafetensorsCheckpoint::open(dir / "bad3.safetensors.index.json"); }, {"bad3", "'a'"});
  // A corrupt shard names the shard.
  write_bytes(dir / "broken.safetensors", "12345");
  write_bytes(dir / "bad4.safetensors.index.json", R"({"weight_map": {"a": "broken.safetensors"}})");
  expect_user_error([&] { SafetensorsCheckpoint::open(dir / "bad4.safetensors.index.json"); }, {"broken.safetensors"});
}

TEST(SafetensorsCheckpoint, DiffusersFolders) {
  ScratchDir dir;
  namespace fs = std::filesystem;
  const std::string unet = dir / "unet", te = dir / "text_encoder", sharded = dir / "transformer", none = dir / "none";
  for (const auto& d : {unet, te, sharded, none}) fs::create_directories(d);
  save_safetensors(unet + "/diffusion_pytorch_model.safetensors", {{"w", at::ones({2}, at::kFloat)}});
  save_safetensors(unet + "/diffusion_pytorch_model.fp16.safetensors", {{"w", at::ones({2}, at::kHalf)}});
  save_safetensors(te + "/model.safetensors", {{"t", at::zeros({1})}});
  // Variant index as diffusers names it, and a plain one.
  save_safetensors(sharded + "/s1.safetensors", {{"x", at::zeros({1}, at::kBFloat16)}});
  save_safetensors(sharded + "/s2.safetensors", {{"x", at::zeros({1}, at::kFloat)}});
  write_bytes(sharded + "/diffusion_pytorch_model.safetensors.index.bf16.json",
              R"({"weight_map": {"x": "s1.safetensors"}})");
  write_bytes(sharded + "/diffusion_pytorch_model.safetensors.index.json",
              R"({"weight_map": {"x": "s2.safetensors"}})");

  EXPECT_EQ(SafetensorsCheckpoint::open_dir(unet).load("w").scalar_type(), at::kFloat);
  EXPECT_EQ(SafetensorsCheckpoint::open_dir(unet, "fp16").load("w").scalar_type(), at::kHalf);
  EXPECT_EQ(SafetensorsCheckpoint::open(unet).load("w").scalar_type(), at::kFloat);  // open() on a folder
  EXPECT_EQ(SafetensorsCheckpoint::open_dir(te).keys(), std::vector<std::string>{"t"});
  EXPECT_EQ(SafetensorsCheckpoint::open_dir(sharded).load("x").scalar_type(), at::kFloat);
  EXPECT_EQ(SafetensorsCheckpoint::open_dir(sharded, "bf16").load("x").scalar_type(), at::kBFloat16);
  expect_user_error([&] { SafetensorsCheckpoint::open_dir(te, "fp16"); },
                    {te, "variant 'fp16'", "model.fp16.safetensors"});
  expect_user_error([&] { SafetensorsCheckpoint::open_dir(none); }, {none, "diffusion_pytorch_model.safetensors"});
  expect_user_error([&] { SafetensorsCheckpoint::open_dir(dir / "absent"); }, {"absent", "not a directory"});
}

}  // namespace
}  // namespace gb
