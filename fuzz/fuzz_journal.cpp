// Resume journal records. The first input byte picks the mode: raw (the bytes are the journal after its
// header, checksums and all: framing and checksum checks) or framed (each input line is a record's JSON text,
// framed here with a correct checksum: the schema validation behind the checksum).
#include "fuzz/fuzz_util.h"
#include "harness/io/json_io.h"
#include "harness/runner/journal.h"

#include <fmt/format.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool framed = data[0] & 1;
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  const nlohmann::json header = {{"journal", 1}, {"config_hash", "0123456789abcdef"}};
  std::string text = gb::runner::Journal::encode_line(header);
  if (framed) {
    size_t start = 0;
    while (start < body.size()) {
      size_t end = body.find('\n', start);
      const bool last = end == std::string::npos;
      if (last) end = body.size();
      const std::string r = body.substr(start, end - start);
      text += "{\"r\":" + r + ",\"crc32\":\"" + fmt::format("{:08x}", gb::crc32(r)) + "\"}";
      if (!last) text += "\n";
      start = end + 1;
    }
  } else {
    text += body;
  }
  const std::string path = gb::fuzz::put("journal.jsonl", text);
  gb::runner::JournalSchema schema;
  schema.num_images = 8;
  schema.wanted = [](int64_t i) { return i % 2 == 1; };
  schema.variants = {"Vanilla", "GoCA", "GoCA[head=average]"};
  schema.thresholds = {1, 3, 3};
  schema.num_classes = {21, 21, 2};
  return gb::fuzz::expect_user_errors([&] {
    gb::runner::Journal j(path, header, false, schema);
    for (const auto& rec : j.replayed()) {
      // What the runner reads from a replayed record must be there with the right types.
      const int64_t i = rec.at("i").get<int64_t>();
      if (i < 0 || i >= schema.num_images || !schema.wanted(i)) std::abort();
      if (rec.value("skip", false)) continue;
      (void)rec.at("id").get<std::string>();
      for (size_t v = 0; v < schema.variants.size(); ++v) {
        const auto& vj = rec.at("v").at(v);
        for (const auto& t : vj.at("t"))
          for (const auto& e : t) {
            const int64_t row = e.at(0).get<int64_t>(), col = e.at(1).get<int64_t>(), n = e.at(2).get<int64_t>();
            if (row < 0 || row > schema.num_classes[v] || col < 0 || col >= schema.num_classes[v] || n < 0)
              std::abort();
          }
        for (const auto& [l, w] : vj.at("lw").items()) (void)w.get<double>();
        for (const auto& [l, w] : vj.at("hw").items()) (void)w.get<std::vector<double>>();
      }
      for (const auto& e : rec.value("ex", nlohmann::json::array())) {
        (void)e.at("variant").get<std::string>();
        (void)e.at("png").get<std::string>();
      }
    }
  });
}
