#include "harness/config/config.h"

#include "tests/test_support.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

namespace gb {
namespace {

using test::expect_user_error;
using test::ScratchDir;
using test::write_bytes;

enum class Head { Average, Weighted };
const std::vector<std::pair<std::string, Head>> kHeads = {
    {"average", Head::Average}, {"mean", Head::Average}, {"weighted", Head::Weighted}};

TEST(Config, TypedReading) {
  const Config c = Config::from_string(R"(
name: run1
count: 42
big: -9000000000
hex: 0x1F
ratio: 0.25
exp: 1e-3
inf: .inf
flag: true
off: False
quoted: "17"
names: [a, b, "c d"]
sizes: [1, 2, 3]
head: mean
empty:
model:
  steps: 10
  layers:
    - {name: up0, weight: 1.5}
    - {name: up1, weight: 2}
)",
                                       "mem.yaml");
  ConfigReader r(c);
  EXPECT_EQ(r.keys().front(), "name");
  EXPECT_EQ(r.get<std::string>("name"), "run1");
  EXPECT_EQ(r.get<int>("count"), 42);
  EXPECT_EQ(r.get<int64_t>("big"), -9000000000LL);
  EXPECT_EQ(r.get<int64_t>("hex"), 31);
  EXPECT_DOUBLE_EQ(r.get<double>("ratio"), 0.25);
  EXPECT_DOUBLE_EQ(r.get<double>("exp"), 1e-3);
  EXPECT_TRUE(std::isinf(r.get<double>("inf")));
  EXPECT_DOUBLE_EQ(r.get<double>("count"), 42.0);  // an integer is a number
  EXPECT_TRUE(r.get<bool>("flag"));
  EXPECT_FALSE(r.get<bool>("off"));
  EXPECT_EQ(r.get<std::string>("quoted"), "17");
  EXPECT_EQ(r.get<std::vector<std::string>>("names"), (std::vector<std::string>{"a", "b", "c d"}));
  EXPECT_EQ(r.get<std::vector<int64_t>>("sizes"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(r.get_enum<Head>("head", kHeads), Head::Average);
  EXPECT_EQ(r.get_enum_or<Head>("absent", kHeads, Head::Weighted), Head::Weighted);
  EXPECT_EQ(r.get_or<int>("empty", 7), 7);  // null counts as absent
  EXPECT_FALSE(r.get_optional<int>("absent").has_value());
  EXPECT_EQ(r.get_or<std::string>("absent", "x"), "x");
  EXPECT_TRUE(r.has("empty"));
  EXPECT_FALSE(r.has("absent"));
  ConfigReader m = r.child("model");
  EXPECT_EQ(m.path(), "model");
  EXPECT_EQ(m.get<int>("steps"), 10);
  auto layers = m.children("layers");
  ASSERT_EQ(layers.size(), 2u);
  EXPECT_EQ(layers[1].path(), "model.layers.1");
  EXPECT_EQ(layers[1].get<std::string>("name"), "up1");
  EXPECT_FLOAT_EQ(layers[1].get<float>("weight"), 2.0f);
  EXPECT_EQ(layers[0].get<double>("weight"), 1.5);
  EXPECT_EQ(layers[0].get<std::string>("name"), "up0");
  EXPECT_FALSE(r.optional_child("absent").has_value());
  EXPECT_TRUE(r.children("absent").empty());
  EXPECT_NO_THROW(r.finish());  // everything was read
}

TEST(Config, ReaderErrorsNameFileLineAndKey) {
  const Config c = Config::from_string(
      "a: 1\n"                     // 1
      "b: hello\n"                 // 2
      "c: [1, x, 3]\n"             // 3
      "d:\n"                       // 4
      "  e: 2.5\n"                 // 5
      "  f: '3'\n"                 // 6
      "g: yes\n"                   // 7
      "h: [a]\n"                   // 8
      "i: median\n"                // 9
      "j: 99999999999999999999\n"  // 10
      "k: 4000000000\n",           // 11
      "cfg.yaml");
  ConfigReader r(c);
  expect_user_error([&] { r.get<int>("b"); }, {"cfg.yaml:2: b: expected an integer, got 'hello'"});
  expect_user_error([&] { r.get<std::vector<int>>("c"); }, {"cfg.yaml:3: c.1: expected an integer, got 'x'"});
  expect_user_error([&] { r.get<int>("missing"); }, {"cfg.yaml:1: missing: missing required key"});
  ConfigReader d = r.child("d");
  expect_user_error([&] { d.get<int64_t>("e"); }, {"cfg.yaml:5: d.e: expected an integer, got '2.5'"});
  expect_user_error([&] { d.get<int>("f"); }, {"cfg.yaml:6: d.f: expected an integer, got the string \"3\""});
  expect_user_error([&] { d.get<std::string>("nope"); }, {"cfg.yaml:4: d.nope: missing required key"});
  expect_user_error([&] { r.get<bool>("g"); }, {"cfg.yaml:7: g: expected true or false"});
  expect_user_error([&] { r.get<std::string>("h"); }, {"cfg.yaml:8: h: expected a string, got a list"});
  expect_user_error([&] { r.get<std::vector<int>>("a"); }, {"cfg.yaml:1: a: expected a list"});
  expect_user_error([&] { r.child("a"); }, {"cfg.yaml:1: a: expected a mapping"});
  expect_user_error([&] { r.children("d"); }, {"cfg.yaml:4: d: expected a list of mappings"});
  expect_user_error([&] { r.children("c"); }, {"cfg.yaml:3: c.0: expected a mapping, got '1'"});
  expect_user_error([&] { r.get_enum<Head>("i", kHeads); },
                    {"cfg.yaml:9: i: 'median' is not one of: average, mean, weighted"});
  expect_user_error([&] { r.get<int64_t>("j"); }, {"cfg.yaml:10: j: integer", "out of range"});
  expect_user_error([&] { r.get<int>("k"); }, {"cfg.yaml:11: k: integer 4000000000 is out of range"});
  expect_user_error([&] { r.fail_at("b", "custom problem"); }, {"cfg.yaml:2: b: custom problem"});
}

TEST(Config, UnknownKeysAreReportedWithLines) {
  const Config c = Config::from_string("name: x\nsteps: 3\nmodel:\n  depth: 2\n  colour: red\ntypo: 1\n", "u.yaml");
  {
    ConfigReader r(c);
    r.get<std::string>("name");
    r.get<int>("steps");
    ConfigReader m = r.child("model");
    m.get<int>("depth");
    expect_user_error([&] { m.finish(); }, {"u.yaml:5: model.colour: unknown key (known here: depth)"});
    // The root's finish() sees the child's unread keys too, in document order.
    expect_user_error([&] { r.finish(); }, {"u.yaml:5: model.colour: unknown key", "also unknown: typo (u.yaml:6)"});
  }
  {
    ConfigReader r(c);
    r.get<std::string>("name");
    r.get<int>("steps");
    r.node("model");  // raw access takes responsibility for the whole subtree
    expect_user_error([&] { r.finish(); }, {"u.yaml:6: typo: unknown key (known here: model, name, steps)"});
  }
}

TEST(Config, SyntaxErrorsCarryTheLine) {
  expect_user_error([] { Config::from_string("a: 1\nb: [1, 2\nc: 3\n", "s.yaml"); }, {"s.yaml:", "YAML syntax error"});
  const std::string msg = expect_user_error([] { Config::from_string("a: 1\n  b: 2\n", "s.yaml"); }, {"s.yaml:2:"});
  expect_user_error([] { Config::from_string("- 1\n- 2\n", "l.yaml"); }, {"l.yaml:1: the top level must be a mapping"});
  expect_user_error([] { Config::from_string("a: 1\nb: 2\na: 3\n", "d.yaml"); }, {"d.yaml:3: a: duplicate key"});
  expect_user_error([] { Config::from_string("a: 1\n---\nb: 2\n", "m.yaml"); }, {"m.yaml", "2 YAML documents"});
  expect_user_error([] { Config::from_string("? [1, 2]\n: x\n", "k.yaml"); },
                    {"k.yaml:1", "keys must be plain strings"});
  EXPECT_EQ(Config::from_string("", "e.yaml").to_yaml(), "{}\n");
  EXPECT_EQ(Config::from_string("# only a comment\n", "e.yaml").root().size(), 0u);
}

TEST(Config, IncludesMergeMappingsAndReplaceLists) {
  ScratchDir dir;
  std::filesystem::create_directories(dir / "base");
  write_bytes(dir / "base/root.yaml",
              "model:\n"               // 1
              "  name: sd15\n"         // 2
              "  steps: 50\n"          // 3
              "  layers: [a, b, c]\n"  // 4
              "seed: 1\n"              // 5
              "only_root: r\n");       // 6
  write_bytes(dir / "base/mid.yaml", "_base_: root.yaml\nmodel:\n  steps: 20\nseed: 2\n");
  write_bytes(dir / "other.yaml", "extra: {k: v}\nseed: 3\n");
  write_bytes(dir / "top.yaml",
              "_base_: [base/mid.yaml, other.yaml]\n"  // 1
              "model:\n"                               // 2
              "  layers: [z]\n"                        // 3
              "name: top\n");                          // 4
  const Config c = Config::load(dir / "top.yaml");
  ConfigReader r(c);
  ConfigReader m = r.child("model");
  EXPECT_EQ(m.get<std::string>("name"), "sd15");                                        // from root, untouched
  EXPECT_EQ(m.get<int>("steps"), 20);                                                   // mid overrides root
  EXPECT_EQ(m.get<std::vector<std::string>>("layers"), std::vector<std::string>{"z"});  // lists replace
  EXPECT_EQ(r.get<int>("seed"), 3);                                                     // later base wins over earlier
  EXPECT_EQ(r.child("extra").get<std::string>("k"), "v");
  EXPECT_FALSE(r.has("_base_"));
  // Key order: bases first, in their order, then new keys.
  EXPECT_EQ(r.keys(), (std::vector<std::string>{"model", "seed", "only_root", "extra", "name"}));
  // Provenance: each key points at the file and line it came from.
  EXPECT_EQ(c.where("model.name"), (dir / "base/root.yaml") + ":2");
  EXPECT_EQ(c.where("model.steps"), (dir / "base/mid.yaml") + ":3");
  EXPECT_EQ(c.where("model.layers"), (dir / "top.yaml") + ":3");
  EXPECT_EQ(c.where("model.layers.0"), (dir / "top.yaml") + ":3");
  EXPECT_EQ(c.where("seed"), (dir / "other.yaml") + ":2");
  EXPECT_EQ(c.where("only_root.deeper.path"), (dir / "base/root.yaml") + ":6");
  EXPECT_EQ(c.source(), dir / "top.yaml");
  // Errors in values that came from a base name the base.
  expect_user_error([&] { r.get<int>("only_root"); }, {"base/root.yaml:6: only_root: expected an integer"});
  // A single _base_ string and an absolute path work too.
  write_bytes(dir / "abs.yaml", "_base_: " + (dir / "other.yaml") + "\nseed: 9\n");
  EXPECT_EQ(ConfigReader(Config::load(dir / "abs.yaml")).get<int>("seed"), 9);
  // Mapping replaced by a scalar and back.
  write_bytes(dir / "scalar.yaml", "_base_: base/root.yaml\nmodel: none\n");
  EXPECT_EQ(ConfigReader(Config::load(dir / "scalar.yaml")).get<std::string>("model"), "none");
}

TEST(Config, IncludeErrors) {
  ScratchDir dir;
  write_bytes(dir / "a.yaml", "_base_: [b.yaml]\nx: 1\n");
  write_bytes(dir / "b.yaml", "_base_: [c.yaml]\n");
  write_bytes(dir / "c.yaml", "_base_: [a.yaml]\n");
  expect_user_error([&] { Config::load(dir / "a.yaml"); },
                    {"c.yaml:1: _base_", "include cycle", "a.yaml -> ", "b.yaml -> "});
  write_bytes(dir / "self.yaml", "_base_: self.yaml\n");
  expect_user_error([&] { Config::load(dir / "self.yaml"); }, {"self.yaml:1: _base_", "include cycle"});
  write_bytes(dir / "missing.yaml", "a: 1\n_base_: [gone.yaml]\n");
  expect_user_error([&] { Config::load(dir / "missing.yaml"); },
                    {"missing.yaml:2: _base_: included file", "gone.yaml' not found"});
  write_bytes(dir / "badbase.yaml", "_base_: {a: 1}\n");
  expect_user_error([&] { Config::load(dir / "badbase.yaml"); }, {"badbase.yaml:1: _base_: must be a file name"});
  write_bytes(dir / "badbase2.yaml", "_base_: [[x]]\n");
  expect_user_error([&] { Config::load(dir / "badbase2.yaml"); },
                    {"badbase2.yaml:1: _base_: entries must be file names"});
  write_bytes(dir / "syntax.yaml", "a: 1\nb: {\n");
  write_bytes(dir / "inc_syntax.yaml", "_base_: syntax.yaml\n");
  expect_user_error([&] { Config::load(dir / "inc_syntax.yaml"); }, {"syntax.yaml:", "YAML syntax error"});
  expect_user_error([&] { Config::load(dir / "absent.yaml"); }, {"absent.yaml: no such file"});
  expect_user_error([&] { Config::load(dir.str()); }, {"is a directory"});
  // A diamond (two bases sharing a base) is not a cycle.
  write_bytes(dir / "d0.yaml", "v: 0\n");
  write_bytes(dir / "d1.yaml", "_base_: d0.yaml\nv1: 1\n");
  write_bytes(dir / "d2.yaml", "_base_: d0.yaml\nv2: 2\n");
  write_bytes(dir / "d3.yaml", "_base_: [d1.yaml, d2.yaml]\n");
  EXPECT_EQ(Config::load(dir / "d3.yaml").root().size(), 3u);
}

TEST(Config, Overrides) {
  const std::string text =
      "model:\n  steps: 50\n  name: sd\nmethods:\n  - {name: goca, head: average}\n  - {name: base, head: "
      "mean}\nempty:\n";
  Config c = Config::from_string(text, "o.yaml",
                                 {"model.steps=20", "methods.1.head=weighted", "seed=7", "new.deep.key=[1, 2]",
                                  "model.name='42'", "empty.x=1", "methods.0=hello"});
  ConfigReader r(c);
  EXPECT_EQ(r.child("model").get<int>("steps"), 20);
  EXPECT_EQ(r.child("model").get<std::string>("name"), "42");
  EXPECT_THROW(r.child("model").get<int>("name"), UserError);  // '42' quoted: a string
  EXPECT_EQ(r.node("methods")[1]["head"].as<std::string>(), "weighted");
  EXPECT_EQ(r.node("methods")[0].as<std::string>(), "hello");
  EXPECT_EQ(r.get<int>("seed"), 7);
  EXPECT_EQ(r.child("new").child("deep").get<std::vector<int>>("key"), (std::vector<int>{1, 2}));
  EXPECT_EQ(r.child("empty").get<int>("x"), 1);
  EXPECT_EQ(c.where("model.steps"), "--set model.steps=20");
  EXPECT_EQ(c.where("new.deep.key.1"), "--set new.deep.key=[1, 2]");
  EXPECT_EQ(c.where("model.name"), "--set model.name='42'");
  EXPECT_EQ(c.where("methods.1.name"), "o.yaml:6");
  // A wrong type given on the command line names the override.
  Config bad = Config::from_string(text, "o.yaml", {"model.steps=many"});
  expect_user_error([&] { ConfigReader(bad).child("model").get<int>("steps"); },
                    {"--set model.steps=many: model.steps: expected an integer, got 'many'"});
  // An unknown key set on the command line is reported as such.
  Config typo = Config::from_string(text, "o.yaml", {"model.stepz=3"});
  ConfigReader tr(typo);
  ConfigReader tm = tr.child("model");
  tm.get<int>("steps");
  tm.get<std::string>("name");
  expect_user_error([&] { tm.finish(); }, {"--set model.stepz=3: model.stepz: unknown key"});
  // Empty value: the empty string.
  Config e = Config::from_string(text, "o.yaml", {"model.name="});
  EXPECT_EQ(ConfigReader(e).child("model").get<std::string>("name"), "");
  // set() in place, later wins.
  c.set("seed=8");
  EXPECT_EQ(ConfigReader(c).get<int>("seed"), 8);
}

TEST(Config, BadOverrides) {
  const std::string text = "model:\n  steps: 50\nmethods:\n  - {name: goca}\n";
  auto with = [&](const std::string& o) { return Config::from_string(text, "o.yaml", {o}); };
  expect_user_error([&] { with("model.steps"); }, {"--set model.steps: expected key=value"});
  expect_user_error([&] { with("=3"); }, {"--set =3: bad key ''"});
  expect_user_error([&] { with("model..steps=3"); }, {"bad key 'model..steps'"});
  expect_user_error([&] { with("model.steps.=3"); }, {"bad key"});
  expect_user_error([&] { with("methods.3.name=x"); },
                    {"--set methods.3.name=x: methods has 1 items; index 3 is out of range"});
  expect_user_error([&] { with("methods.first.name=x"); }, {"methods is a list; 'first' is not an index"});
  expect_user_error([&] { with("model.steps.inner=3"); }, {"model.steps is a value, not a mapping or list"});
  expect_user_error([&] { with("model.steps=[1, 2"); }, {"--set model.steps=[1, 2: cannot parse the value as YAML"});
  expect_user_error([&] { with("_base_=x.yaml"); }, {"_base_ cannot be overridden"});
}

TEST(Config, ResolvedYamlRoundTripsAndHashes) {
  ScratchDir dir;
  write_bytes(dir / "base.yaml", "a: {x: 1, y: [1, 2]}\nq: \"007\"\ns: 'true'\n");
  write_bytes(dir / "top.yaml",
              "_base_: base.yaml\n# comment\nb: hello world\nc: ~\nd: []\ne: {}\nf: 'multi: colon'\n");
  const Config c = Config::load(dir / "top.yaml", {"a.x=2", "g=\"\""});
  const std::string y = c.to_yaml();
  EXPECT_EQ(y.find("_base_"), std::string::npos);
  EXPECT_NE(y.find("x: 2"), std::string::npos) << y;
  EXPECT_NE(y.find("\"007\""), std::string::npos) << y;  // quoted strings stay strings
  const Config back = Config::from_string(y, "back.yaml");
  EXPECT_EQ(back.hash(), c.hash());
  EXPECT_EQ(back.to_yaml(), y);
  ConfigReader br(back);
  EXPECT_EQ(br.get<std::string>("q"), "007");
  EXPECT_THROW(br.get<bool>("s"), UserError);  // 'true' was quoted: still a string
  EXPECT_EQ(br.get<std::string>("f"), "multi: colon");
  EXPECT_EQ(br.get<std::string>("g"), "");
  EXPECT_EQ(br.child("a").get<std::vector<int>>("y"), (std::vector<int>{1, 2}));
  c.save(dir / "resolved.yaml");
  EXPECT_EQ(Config::load(dir / "resolved.yaml").hash(), c.hash());
  EXPECT_EQ(c.hash().size(), 16u);
  // The hash ignores key order and comments, and sees values and types.
  EXPECT_EQ(Config::from_string("a: 1\nb: {c: 2, d: 3}\n", "1").hash(),
            Config::from_string("# x\nb: {d: 3, c: 2}\na: 1\n", "2").hash());
  EXPECT_NE(Config::from_string("a: 1\n", "1").hash(), Config::from_string("a: 2\n", "2").hash());
  EXPECT_NE(Config::from_string("a: 1\n", "1").hash(), Config::from_string("a: '1'\n", "2").hash());
  EXPECT_NE(Config::from_string("a: [1, 2]\n", "1").hash(), Config::from_string("a: [12]\n", "2").hash());
  expect_user_error([&] { c.save(dir / "no/such/dir/x.yaml"); }, {"no/such/dir/x.yaml"});
}

TEST(Config, CopiesAndReaderAssignmentDoNotAlias) {
  Config a = Config::from_string("x: 1\nm: {k: v}\n", "a.yaml");
  Config b = a;
  b.set("x=2");
  EXPECT_EQ(ConfigReader(a).get<int>("x"), 1);
  EXPECT_EQ(ConfigReader(b).get<int>("x"), 2);
  Config c = Config::from_string("x: 3\n", "c.yaml");
  c = a;
  c.set("m.k=w");
  EXPECT_EQ(ConfigReader(a).child("m").get<std::string>("k"), "v");
  Config moved = std::move(c);
  EXPECT_EQ(ConfigReader(moved).child("m").get<std::string>("k"), "w");
  // Assigning readers rebinds them; it never writes one subtree over another.
  ConfigReader r(a);
  ConfigReader m = r.child("m");
  m = r;
  EXPECT_EQ(ConfigReader(a).child("m").get<std::string>("k"), "v");
  EXPECT_EQ(m.get<int>("x"), 1);
  std::optional<ConfigReader> opt = r.optional_child("m");
  opt = r;
  EXPECT_EQ(ConfigReader(a).child("m").get<std::string>("k"), "v");
}

// Fuzz-style: truncations and random corruption of a valid config load or fail with a UserError.
TEST(Config, TruncationsAndCorruptionNeverCrash) {
  const std::string good =
      "_base_: []\nmodel:\n  name: \"sd 1.5\"\n  steps: 50\n  layers: [a, {b: 1}, [c]]\n"
      "methods:\n  - name: goca\n    head: average\n  - &anchor {name: base}\n  - *anchor\nlong: |\n  text\n";
  std::mt19937 rng(5);
  for (size_t len = 0; len <= good.size(); ++len) {
    try {
      Config c = Config::from_string(good.substr(0, len), "t.yaml");
      c.hash();
      Config::from_string(c.to_yaml(), "again.yaml");
    } catch (const UserError&) {}
  }
  const std::string alphabet = ":-[]{},&*!|>'\"#?\n \t%@`abc1.";
  for (int trial = 0; trial < 500; ++trial) {
    std::string bad = good;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits; ++k) bad[rng() % bad.size()] = alphabet[rng() % alphabet.size()];
    try {
      Config c = Config::from_string(bad, "f.yaml", {"model.steps=3"});
      c.hash();
      Config::from_string(c.to_yaml(), "again.yaml");
    } catch (const UserError&) {}
  }
}

}  // namespace
}  // namespace gb
