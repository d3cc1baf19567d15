#include "harness/config/config.h"

#include <yaml-cpp/eventhandler.h>

#include "harness/core/errors.h"
#include "harness/io/read_file.h"
#include "harness/core/excerpt.h"
#include "harness/core/hash.h"
#include "harness/core/strings.h"
#include "harness/io/atomic_file.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace gb {

namespace fs = std::filesystem;

namespace {

std::string join_path(const std::string& a, const std::string& b) { return a.empty() ? b : a + "." + b; }

bool under(const std::string& prefix, const std::string& path) {
  if (prefix.empty()) return true;
  return path.size() >= prefix.size() && path.compare(0, prefix.size(), prefix) == 0 &&
         (path.size() == prefix.size() || path[prefix.size()] == '.');
}

void erase_under(std::map<std::string, std::string>& m, const std::string& prefix) {
  for (auto it = m.lower_bound(prefix); it != m.end();) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) break;  // left the block of keys starting with prefix
    if (under(prefix, it->first)) {
      it = m.erase(it);
    } else {
      ++it;
    }
  }
}

std::string at_line(const std::string& file, const YAML::Mark& m) {
  if (m.is_null() || m.line < 0) return file;
  return file + ":" + std::to_string(m.line + 1);
}

bool is_index(const std::string& s) {
  return !s.empty() && s.size() < 10 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Limits on what one config document may expand to (docs/robustness.md). yaml-cpp shares aliased nodes, so a
// few lines of nested aliases ("billion laughs") parse instantly but expand exponentially when copied.
// yaml-cpp 0.7 never returns on some invalid text: a ',' where a document's node starts or after it ends
// (", x", "--- &a ,", "[1, 2],", "x # c\n,"); its parser loops, emitting null nodes forever. A first pass
// counts the parse events without building nodes: valid text yields fewer events than it has bytes (an alias
// is one event, not its expansion), so more than that is the loop. Returns the 1-based line where it was
// caught, or 0 when the text parses (or fails) normally.
// The offset of the first byte a config may not hold: not UTF-8 text (find_non_text_byte), or a carriage
// return without a line feed (YAML reads a lone CR as a line break, and such values did not survive
// `config show` and a reload unchanged). npos when there is none.
size_t find_non_config_byte(const std::string& text) {
  const size_t bad = find_non_text_byte(text);
  for (size_t cr = text.find('\r'); cr != std::string::npos && cr < bad; cr = text.find('\r', cr + 1))
    if (cr + 1 == text.size() || text[cr + 1] != '\n') return cr;
  return bad;
}

class EventBudget : public YAML::EventHandler {
 public:
  explicit EventBudget(size_t limit) : limit_(limit) {}
  struct Exceeded {
    YAML::Mark mark;
  };
  void OnDocumentStart(const YAML::Mark& m) override { count(m); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& m, YAML::anchor_t) override { count(m); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { count(m); }
  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t, const std::string&) override { count(m); }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    count(m);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    count(m);
  }
  void OnMapEnd() override {}

 private:
  void count(const YAML::Mark& m) {
    if (++n_ > limit_) throw Exceeded{m};
  }
  size_t limit_;
  size_t n_ = 0;
};

size_t line_where_yaml_cpp_loops(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  EventBudget budget(text.size() + 16);
  try {
    while (parser.HandleNextDocument(budget)) {}
  } catch (const EventBudget::Exceeded& e) {
    return static_cast<size_t>(e.mark.line) + 1;
  } catch (const YAML::Exception&) {
    // A syntax error: the real parse reports it.
  }
  return 0;
}

constexpr size_t kMaxYamlBytes = size_t(8) << 20;  // one config file
constexpr size_t kMaxYamlNodes = 200000;           // nodes after alias expansion, per document or --set value
constexpr int kMaxYamlDepth = 128;                 // nesting of mappings and lists
constexpr size_t kMaxIncludes = 256;               // files read through _base_ by one load

struct CopyBudget {
  size_t nodes = 0;
};

YAML::Node copy_node_impl(const YAML::Node& n, const std::string& path, const std::string& file, const YAML::Mark& mark,
                          std::map<std::string, std::string>& origins, const std::string& fixed_origin,
                          CopyBudget& budget, int depth);

// A fresh deep copy of a parsed node (no aliases shared with the parse), recording where each path came from.
// Map keys must be scalars and unique. Bounded by kMaxYamlNodes and kMaxYamlDepth.
YAML::Node copy_node(const YAML::Node& n, const std::string& path, const std::string& file, const YAML::Mark& mark,
                     std::map<std::string, std::string>& origins, const std::string& fixed_origin = "") {
  CopyBudget budget;
  return copy_node_impl(n, path, file, mark, origins, fixed_origin, budget, 0);
}

YAML::Node copy_node_impl(const YAML::Node& n, const std::string& path, const std::string& file, const YAML::Mark& mark,
                          std::map<std::string, std::string>& origins, const std::string& fixed_origin,
                          CopyBudget& budget, int depth) {
  const std::string here = fixed_origin.empty() ? at_line(file, mark) : fixed_origin;
  if (++budget.nodes > kMaxYamlNodes)
    fail("{}: the document expands to more than {} values (nested anchors and aliases?); refusing it", here,
         kMaxYamlNodes);
  if (depth > kMaxYamlDepth) fail("{}: nested deeper than {} levels; refusing it", here, kMaxYamlDepth);
  origins[path] = here;
  switch (n.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null: return YAML::Node(YAML::NodeType::Null);
    case YAML::NodeType::Scalar: {
      // Quoted or !!str: a string; plain: resolved by the reader. Other tags have no meaning in a config (and a
      // tagged empty value would come back as null from `config show`).
      const std::string& tag = n.Tag();
      const bool string = tag == "!" || tag == "tag:yaml.org,2002:str";
      if (!string && tag != "?" && !tag.empty())
        fail("{}: the YAML tag {} is not supported in a config (write the plain value)", here, excerpt(tag));
      YAML::Node s(n.Scalar());
      s.SetTag(string ? "!" : "?");
      return s;
    }
    case YAML::NodeType::Sequence: {
      YAML::Node s(YAML::NodeType::Sequence);
      for (size_t i = 0; i < n.size(); ++i) {
        s.push_back(copy_node_impl(n[i], join_path(path, std::to_string(i)), file, n[i].Mark(), origins, fixed_origin,
                                   budget, depth + 1));
      }
      return s;
    }
    case YAML::NodeType::Map: {
      YAML::Node m(YAML::NodeType::Map);
      std::set<std::string> seen;
      for (const auto& kv : n) {
        const std::string where = fixed_origin.empty() ? at_line(file, kv.first.Mark()) : fixed_origin;
        if (!kv.first.IsScalar())
          fail("{}: {}: mapping keys must be plain strings", where, path.empty() ? "<top>" : path);
        const std::string key = kv.first.Scalar();
        const std::string p = join_path(path, key);
        if (!seen.insert(key).second) fail("{}: {}: duplicate key", where, p);
        m[key] = copy_node_impl(kv.second, p, file, kv.first.Mark(), origins, fixed_origin, budget, depth + 1);
      }
      return m;
    }
  }
  return YAML::Node();
}

void emit(YAML::Emitter& e, const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null: e << YAML::Null; break;
    case YAML::NodeType::Scalar:
      if (n.Tag() == "!") {
        e << YAML::DoubleQuoted << n.Scalar();
      } else {
        e << n.Scalar();
      }
      break;
    case YAML::NodeType::Sequence:
      e << YAML::BeginSeq;
      for (const auto& x : n) emit(e, x);
      e << YAML::EndSeq;
      break;
    case YAML::NodeType::Map:
      e << YAML::BeginMap;
      for (const auto& kv : n) {
        e << YAML::Key << kv.first.Scalar() << YAML::Value;
        emit(e, kv.second);
      }
      e << YAML::EndMap;
      break;
  }
}

// Canonical text for hashing: sorted keys, explicit types, length-prefixed strings.
void canonical(std::string& out, const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null: out += "~"; break;
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      out += (n.Tag() == "!" ? "s" : "p") + std::to_string(s.size()) + ":" + s;
      break;
    }
    case YAML::NodeType::Sequence:
      out += "[";
      for (const auto& x : n) canonical(out, x);
      out += "]";
      break;
    case YAML::NodeType::Map: {
      std::map<std::string, YAML::Node> sorted;
      for (const auto& kv : n) sorted.emplace(kv.first.Scalar(), kv.second);
      out += "{";
      for (const auto& [k, v] : sorted) {
        out += std::to_string(k.size()) + ":" + k;
        canonical(out, v);
      }
      out += "}";
      break;
    }
  }
}

std::string read_text(const std::string& path, const std::string& context) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    if (context.empty()) fail_file(path, "no such file");
    fail("{}: included file '{}' not found", context, path);
  }
  if (fs::is_directory(path, ec)) fail_file(path, "is a directory, not a YAML file");
  return read_whole_file(path, "YAML file");
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Loading: includes and merging

struct ConfigLoader {
  struct Layer {
    YAML::Node root{YAML::NodeType::Map};
    std::map<std::string, std::string> origins;
  };
  std::vector<std::string> stack;  // canonical paths of the files being loaded (cycle detection)
  size_t files_read = 0;           // bounded by kMaxIncludes (a diamond of includes can repeat files)

  // The Config of a loaded layer, named `source`, with `overrides` applied.
  static Config assemble(Layer&& l, const std::string& source, const std::vector<std::string>& overrides) {
    Config c;
    c.root_.reset(l.root);
    c.origins_ = std::move(l.origins);
    c.source_ = source;
    for (const auto& o : overrides) c.set(o);
    return c;
  }

  // Later layers win; mappings merge key by key; anything else (lists included) replaces.
  static void merge(YAML::Node dst, const YAML::Node& src, const std::string& path,
                    std::map<std::string, std::string>& dst_origins,
                    const std::map<std::string, std::string>& src_origins) {
    for (const auto& kv : src) {
      const std::string key = kv.first.Scalar();
      const std::string p = join_path(path, key);
      const YAML::Node& cd = dst;
      YAML::Node existing = cd[key];
      if (existing.IsDefined() && existing.IsMap() && kv.second.IsMap()) {
        auto it = src_origins.find(p);
        if (it != src_origins.end()) dst_origins[p] = it->second;
        merge(existing, kv.second, p, dst_origins, src_origins);
        continue;
      }
      erase_under(dst_origins, p);
      for (auto it = src_origins.lower_bound(p); it != src_origins.end() && it->first.compare(0, p.size(), p) == 0;
           ++it) {
        if (under(p, it->first)) dst_origins[it->first] = it->second;
      }
      dst[key] = kv.second;
    }
  }

  Layer parse(const std::string& text, const std::string& file) {
    if (text.size() > kMaxYamlBytes)
      fail_file(file, "{} bytes is too large for a config file (limit {} MiB)", text.size(), kMaxYamlBytes >> 20);
    if (const size_t bad = find_non_config_byte(text); bad != std::string::npos) {
      const size_t line =
          1 + static_cast<size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(bad), '\n'));
      fail_file(file,
                "line {}: byte 0x{:02x} at offset {} is not text (a config must be UTF-8 without control characters, "
                "lines ending in LF or CRLF)",
                line, static_cast<unsigned char>(text[bad]), bad);
    }
    if (const size_t line = line_where_yaml_cpp_loops(text))
      fail_file(file, "line {}: not valid YAML (a ',' outside [] or {{}} where a value starts or after it ends?)",
                line);
    std::vector<YAML::Node> docs;
    try {
      docs = YAML::LoadAll(text);
    } catch (const YAML::Exception& e) {
      fail("{}: YAML syntax error: {}", at_line(file, e.mark), e.msg);
    }
    if (docs.size() > 1) fail_file(file, "holds {} YAML documents; a config is one document", docs.size());
    Layer l;
    if (docs.empty() || docs[0].IsNull()) {
      l.origins[""] = file + ":1";
      return l;
    }
    if (!docs[0].IsMap()) fail("{}: the top level must be a mapping of keys to values", at_line(file, docs[0].Mark()));
    l.root = copy_node(docs[0], "", file, YAML::Mark(), l.origins);
    l.origins[""] = file + ":1";
    return l;
  }

  Layer load_text(const std::string& text, const std::string& file, const fs::path& dir) {
    Layer own = parse(text, file);
    const YAML::Node& croot = own.root;
    YAML::Node bases = croot["_base_"];
    if (!bases.IsDefined()) return own;
    const std::string where = own.origins.count("_base_") ? own.origins["_base_"] : file;
    std::vector<std::string> list;
    if (bases.IsScalar()) {
      list.push_back(bases.Scalar());
    } else if (bases.IsSequence()) {
      for (const auto& b : bases) {
        if (!b.IsScalar() || b.Scalar().empty()) fail("{}: _base_: entries must be file names", where);
        list.push_back(b.Scalar());
      }
    } else if (!bases.IsNull()) {
      fail("{}: _base_: must be a file name or a list of file names", where);
    }
    own.root.remove("_base_");
    erase_under(own.origins, "_base_");
    Layer out;
    out.origins[""] = file + ":1";
    for (const auto& b : list) {
      const fs::path p = fs::path(b).is_absolute() ? fs::path(b) : dir / b;
      Layer base = load_file(p.lexically_normal().string(), where + ": _base_");
      merge(out.root, base.root, "", out.origins, base.origins);
    }
    merge(out.root, own.root, "", out.origins, own.origins);
    return out;
  }

  Layer load_file(const std::string& path, const std::string& context) {
    if (++files_read > kMaxIncludes)
      fail("{}: more than {} files read through _base_ includes; refusing it", context.empty() ? path : context,
           kMaxIncludes);
    const std::string text = read_text(path, context);
    std::error_code ec;
    const std::string canon = fs::weakly_canonical(path, ec).string();
    for (size_t i = 0; i < stack.size(); ++i) {
      if (stack[i] == canon) {
        std::string chain;
        for (size_t j = i; j < stack.size(); ++j) chain += stack[j] + " -> ";
        fail("{}: include cycle: {}{}", context, chain, canon);
      }
    }
    stack.push_back(canon);
    Layer l = load_text(text, path, fs::path(path).parent_path());
    stack.pop_back();
    return l;
  }
};

Config::Config(const Config& other)
    : root_(YAML::Clone(other.root_)), source_(other.source_), origins_(other.origins_) {}

// yaml-cpp's Node::operator= writes through into the node it is bound to; Node::reset() rebinds.
Config& Config::operator=(const Config& other) {
  if (this != &other) {
    root_.reset(YAML::Clone(other.root_));
    source_ = other.source_;
    origins_ = other.origins_;
  }
  return *this;
}

Config::Config(Config&& other) noexcept
    : root_(other.root_), source_(std::move(other.source_)), origins_(std::move(other.origins_)) {}

Config& Config::operator=(Config&& other) noexcept {
  if (this != &other) {
    root_.reset(other.root_);
    source_ = std::move(other.source_);
    origins_ = std::move(other.origins_);
  }
  return *this;
}

Config Config::load(const std::string& path, const std::vector<std::string>& overrides) {
  ConfigLoader loader;
  return ConfigLoader::assemble(loader.load_file(path, ""), path, overrides);
}

Config Config::from_string(const std::string& yaml, const std::string& source,
                           const std::vector<std::string>& overrides) {
  ConfigLoader loader;
  std::error_code ec;
  const std::string canon = fs::weakly_canonical(source, ec).string();
  loader.stack.push_back(canon);
  return ConfigLoader::assemble(loader.load_text(yaml, source, fs::path(source).parent_path()), source, overrides);
}

std::string Config::where(const std::string& key_path) const {
  std::string p = key_path;
  while (true) {
    auto it = origins_.find(p);
    if (it != origins_.end()) return it->second;
    if (p.empty()) return source_;
    const size_t dot = p.rfind('.');
    p = dot == std::string::npos ? "" : p.substr(0, dot);
  }
}

std::string Config::to_yaml() const {
  YAML::Emitter e;
  e.SetIndent(2);
  if (!root_.IsDefined() || (root_.IsMap() && root_.size() == 0)) return "{}\n";
  emit(e, root_);
  if (!e.good()) throw std::runtime_error("Config::to_yaml: " + e.GetLastError());
  return std::string(e.c_str()) + "\n";
}

void Config::save(const std::string& path) const { write_file_atomic(path, to_yaml()); }

std::string Config::hash() const {
  std::string text;
  canonical(text, root_);
  return fmt::format("{:016x}", fnv1a(text));
}

void Config::set(const std::string& assignment) {
  if (const size_t bad = find_non_config_byte(assignment); bad != std::string::npos)
    fail(
        "--set: byte 0x{:02x} at offset {} of the assignment is not text (UTF-8 without control characters, no lone "
        "CR)",
        static_cast<unsigned char>(assignment[bad]), bad);
  const std::string origin = "--set " + assignment;
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos) fail("{}: expected key=value (e.g. --set methods.0.head_method=average)", origin);
  const std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  std::vector<std::string> parts;
  {
    size_t start = 0;
    while (true) {
      const size_t dot = key.find('.', start);
      parts.push_back(key.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
  }
  for (const auto& part : parts) {
    if (part.empty() || part.find_first_of(" \t") != std::string::npos) {
      fail("{}: bad key '{}' (dotted names: a.b.c, list items by index: a.0.b)", origin, key);
    }
  }
  if (parts[0] == "_base_") fail("{}: _base_ cannot be overridden", origin);
  YAML::Node parsed;
  if (text.empty()) {
    parsed = YAML::Node(std::string());
    parsed.SetTag("!");
  } else {
    if (line_where_yaml_cpp_loops(text))
      fail("{}: not valid YAML (a ',' outside [] or {{}} where a value starts or after it ends?)", origin);
    try {
      parsed = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      fail("{}: cannot parse the value as YAML: {}", origin, e.msg);
    }
  }
  std::map<std::string, std::string> new_origins;
  YAML::Node value = copy_node(parsed, key, origin, YAML::Mark(), new_origins, origin);

  if (!root_.IsDefined() || root_.IsNull()) root_.reset(YAML::Node(YAML::NodeType::Map));
  YAML::Node cur;
  cur.reset(root_);
  std::string path;
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    const bool last = i + 1 == parts.size();
    const std::string p = join_path(path, part);
    if (cur.IsSequence()) {
      if (!is_index(part)) fail("{}: {} is a list; '{}' is not an index", origin, path, part);
      const size_t idx = std::stoul(part);
      if (idx >= cur.size()) fail("{}: {} has {} items; index {} is out of range", origin, path, cur.size(), idx);
      if (last) {
        cur[idx] = value;
      } else {
        YAML::Node next = cur[idx];
        if (!next.IsMap() && !next.IsSequence()) {
          if (!next.IsNull()) fail("{}: {} is a value, not a mapping or list", origin, p);
          cur[idx] = YAML::Node(YAML::NodeType::Map);
          next.reset(cur[idx]);
        }
        cur.reset(next);
      }
    } else if (cur.IsMap()) {
      const YAML::Node& ccur = cur;
      YAML::Node next = ccur[part];
      if (last) {
        cur[part] = value;
      } else {
        if (!next.IsDefined() || next.IsNull()) {
          cur[part] = YAML::Node(YAML::NodeType::Map);
          origins_[p] = origin;
        } else if (!next.IsMap() && !next.IsSequence()) {
          fail("{}: {} is a value, not a mapping or list", origin, p);
        }
        YAML::Node bound = ccur[part];
        cur.reset(bound);
      }
    } else {
      fail("{}: {} is a value, not a mapping or list", origin, path);
    }
    path = p;
  }
  erase_under(origins_, key);
  for (const auto& [k, v] : new_origins) origins_[k] = v;
}

// ---------------------------------------------------------------------------------------------------------
// ConfigReader

struct ConfigReader::State {
  std::map<std::string, bool> used;  // full dotted path -> read (true) / present but not read yet (false)
  std::deque<YAML::Node> kept;       // nodes handed out by reference through node()
};

ConfigReader::ConfigReader(const Config& config)
    : ConfigReader(&config, config.root(), "", std::make_shared<State>()) {}

ConfigReader::ConfigReader(const Config* config, YAML::Node node, std::string path, std::shared_ptr<State> state)
    : config_(config), path_(std::move(path)), used_(std::move(state)) {
  node_.reset(node);
  if (node_.IsMap()) {
    for (const auto& kv : node_) used_->used.emplace(key_path(kv.first.Scalar()), false);
  }
}

ConfigReader& ConfigReader::operator=(const ConfigReader& other) {
  config_ = other.config_;
  node_.reset(other.node_);
  path_ = other.path_;
  used_ = other.used_;
  return *this;
}

std::string ConfigReader::key_path(const std::string& key) const { return join_path(path_, key); }

YAML::Node ConfigReader::find(const std::string& key) const {
  used_->used[key_path(key)] = true;
  if (!node_.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  const YAML::Node& n = node_;
  return n[key];
}

bool ConfigReader::has(const std::string& key) const {
  if (!node_.IsMap()) return false;
  const YAML::Node& n = node_;
  return n[key].IsDefined();
}

std::vector<std::string> ConfigReader::keys() const {
  std::vector<std::string> out;
  if (node_.IsMap())
    for (const auto& kv : node_) out.push_back(kv.first.Scalar());
  return out;
}

void ConfigReader::fail_at(const std::string& key, const std::string& message) const {
  const std::string p = key_path(key);
  throw UserError(config_->where(p) + ": " + (p.empty() ? "" : p + ": ") + message);
}

void ConfigReader::missing(const std::string& key) const {
  YAML::Node n = find(key);
  fail_at(key, n.IsDefined() ? "has no value" : "missing required key");
}

ConfigReader ConfigReader::child(const std::string& key) const {
  YAML::Node n = find(key);
  if (!n.IsDefined() || n.IsNull()) missing(key);
  if (!n.IsMap()) config_detail::not_a(*this, n, key, "a mapping");
  return ConfigReader(config_, n, key_path(key), used_);
}

std::optional<ConfigReader> ConfigReader::optional_child(const std::string& key) const {
  YAML::Node n = find(key);
  if (!n.IsDefined() || n.IsNull()) return std::nullopt;
  return child(key);
}

std::vector<ConfigReader> ConfigReader::children(const std::string& key) const {
  YAML::Node n = find(key);
  std::vector<ConfigReader> out;
  if (!n.IsDefined() || n.IsNull()) return out;
  if (!n.IsSequence()) config_detail::not_a(*this, n, key, "a list of mappings");
  for (size_t i = 0; i < n.size(); ++i) {
    const std::string k = key + "." + std::to_string(i);
    if (!n[i].IsMap()) config_detail::not_a(*this, n[i], k, "a mapping");
    out.push_back(ConfigReader(config_, n[i], key_path(k), used_));
  }
  return out;
}

const YAML::Node& ConfigReader::node(const std::string& key) const {
  YAML::Node n = find(key);
  if (!n.IsDefined()) missing(key);
  used_->kept.push_back(n);
  return used_->kept.back();
}

void ConfigReader::finish() const {
  std::vector<std::string> unknown;
  std::set<std::string> known;
  for (const auto& [p, read] : used_->used) {
    if (!under(path_, p) || p == path_) continue;
    if (!read) unknown.push_back(p);
    const size_t dot = p.rfind('.');
    const std::string parent = dot == std::string::npos ? "" : p.substr(0, dot);
    if (read && parent == path_) known.insert(dot == std::string::npos ? p : p.substr(dot + 1));
  }
  if (unknown.empty()) return;
  // Report in document order where lines are known.
  auto line_of = [&](const std::string& p) {
    const std::string w = config_->where(p);
    const size_t colon = w.rfind(':');
    return colon == std::string::npos ? 0L : std::strtol(w.c_str() + colon + 1, nullptr, 10);
  };
  std::stable_sort(unknown.begin(), unknown.end(),
                   [&](const std::string& a, const std::string& b) { return line_of(a) < line_of(b); });
  std::string msg = config_->where(unknown[0]) + ": " + unknown[0] + ": unknown key";
  const size_t dot = unknown[0].rfind('.');
  const std::string parent = dot == std::string::npos ? "" : unknown[0].substr(0, dot);
  if (parent == path_ && !known.empty()) {
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    msg += " (known here: " + list + ")";
  }
  if (unknown.size() > 1) {
    msg += "; also unknown:";
    for (size_t i = 1; i < unknown.size(); ++i) msg += " " + unknown[i] + " (" + config_->where(unknown[i]) + ")";
  }
  throw UserError(msg);
}

// ---------------------------------------------------------------------------------------------------------
// Scalar conversions

namespace config_detail {

std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: return "nothing";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Scalar: break;
  }
  std::string s = n.Scalar();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return (n.Tag() == "!" ? "the string \"" : "'") + s + (n.Tag() == "!" ? "\"" : "'");
}

void not_a(const ConfigReader& r, const YAML::Node& n, const std::string& key, const char* what) {
  r.fail_at(key, std::string("expected ") + what + ", got " + describe(n));
}

namespace {
bool plain_scalar(const YAML::Node& n) { return n.IsScalar() && n.Tag() != "!"; }
}  // namespace

bool to_bool(const ConfigReader& r, const YAML::Node& n, const std::string& key) {
  if (plain_scalar(n)) {
    const std::string& s = n.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  not_a(r, n, key, "true or false");
}

int64_t to_int64(const ConfigReader& r, const YAML::Node& n, const std::string& key) {
  if (plain_scalar(n)) {
    const std::string& s = n.Scalar();
    const char* b = s.c_str();
    char* end = nullptr;
    errno = 0;
    const bool hex = s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    const long long v = std::strtoll(b, &end, hex ? 16 : 10);
    const bool digits_only = !s.empty() && s.find_first_not_of("+-0123456789abcdefABCDEFxX") == std::string::npos;
    if (digits_only && end == b + s.size() && !s.empty() && !std::isspace(static_cast<unsigned char>(s[0]))) {
      if (errno == ERANGE) r.fail_at(key, "integer " + s + " is out of range");
      return v;
    }
  }
  not_a(r, n, key, "an integer");
}

double to_double(const ConfigReader& r, const YAML::Node& n, const std::string& key) {
  if (plain_scalar(n)) {
    const std::string& s = n.Scalar();
    if (s == ".inf" || s == ".Inf" || s == ".INF" || s == "+.inf" || s == "+.Inf" || s == "+.INF") return INFINITY;
    if (s == "-.inf" || s == "-.Inf" || s == "-.INF") return -INFINITY;
    if (s == ".nan" || s == ".NaN" || s == ".NAN") return NAN;
    const bool numeric = !s.empty() && s.find_first_not_of("+-0123456789.eE") == std::string::npos;
    if (numeric) {
      char* end = nullptr;
      errno = 0;
      const double v = std::strtod(s.c_str(), &end);
      if (end == s.c_str() + s.size()) {
        if (errno == ERANGE && std::isinf(v)) r.fail_at(key, "number " + s + " is out of range");
        return v;
      }
    }
  }
  not_a(r, n, key, "a number");
}

std::string to_string(const ConfigReader& r, const YAML::Node& n, const std::string& key) {
  if (n.IsScalar()) return n.Scalar();
  not_a(r, n, key, "a string");
}

}  // namespace config_detail

}  // namespace gb
